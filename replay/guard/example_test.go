package guard_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/reprise-tool/reprise/replay/guard"
)

// Rules are evaluated over a sliding window; the first that holds trips
// the guard once.
func ExampleGuard() {
	rules, err := guard.ParseRules("error_rate>5%,p99>2s")
	if err != nil {
		fmt.Println(err)
		return
	}
	g, _ := guard.New(rules, guard.WithWindow(10*time.Second))
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 100; i++ {
		o := guard.Observation{At: start.Add(time.Duration(i) * 10 * time.Millisecond), Status: 200, FromDue: 30 * time.Millisecond}
		if i%4 == 0 {
			o.Status = 502
		}
		g.Observe(o)
	}
	if trip, ok := g.Check(start.Add(time.Second)); ok {
		fmt.Println(trip.Reason())
	}
	// Output:
	// error_rate was 25% (limit >5%) over the last 10s (100 requests) at 12:00:01Z
}

// The orderly stop: Issue ends at once, InFlight after the drain.
func ExampleStopper() {
	s := guard.NewStopper(context.Background(), 50*time.Millisecond)
	defer s.Close()
	s.Stop(fmt.Errorf("tripped"))
	<-s.Issue().Done()
	fmt.Println("issuing stopped:", s.Cause())
	<-s.InFlight().Done()
	fmt.Println("in flight:", s.Killed() == guard.ErrDrainTimeout)
	// Output:
	// issuing stopped: tripped
	// in flight: true
}

// The original server is refused unless --allow-original-host.
func ExampleCheckTarget() {
	var o guard.Origin
	o.Add(netip.MustParseAddrPort("127.0.0.1:8089"), "127.0.0.1:8089")
	fmt.Println(guard.CheckTarget(context.Background(), "http://127.0.0.1:8090", &o, nil))
	fmt.Println(guard.CheckTarget(context.Background(), "http://127.0.0.1:8089", &o, nil))
	// Output:
	// <nil>
	// target http://127.0.0.1:8089 is the recording's original server (Host header "127.0.0.1:8089", 1 request): replay against staging, or pass --allow-original-host if you mean it
}
