package ramp_test

import (
	"fmt"
	"time"

	"github.com/reprise-tool/reprise/replay/ramp"
)

// A speed ramp changes the clock rate: a request recorded 200 s into the
// recording is due 160 s into the replay (120 s at 1x, then 80 s at 2x).
func ExampleParse() {
	r, err := ramp.Parse("1x:2m,2x:2m,5x:5m,10x")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Due(200 * time.Second))
	i, name := r.StageAt(3 * time.Minute)
	fmt.Println(i, name, r.Speed(3*time.Minute))
	for _, st := range r.Plan(10 * time.Minute) {
		fmt.Printf("%-6s wall %v-%v recording %v-%v\n", st.Name, st.Start, st.End, st.From, st.To)
	}
	// Output:
	// 2m40s
	// 1 2x:2m 2
	// 1x:2m  wall 0s-2m0s recording 0s-2m0s
	// 2x:2m  wall 2m0s-4m0s recording 2m0s-6m0s
	// 5x:5m  wall 4m0s-4m48s recording 6m0s-10m0s
}

// Mistakes fail when the flag is parsed, with the fix in the message.
func ExampleParse_error() {
	_, err := ramp.Parse("1x:2m,2x:2m")
	fmt.Println(err)
	// Output:
	// ramp "1x:2m,2x:2m", stage 2: the last stage lasts until the end and takes no duration: write "2x"
}

// One limiter for the whole run, whatever the number of workers.
func ExampleParseRate() {
	r, _ := ramp.ParseRate("6000/m")
	lim := r.Limiter()
	fmt.Println(r.PerSecond, lim.Limit(), lim.Burst())
	// Output:
	// 100 99 1
}
