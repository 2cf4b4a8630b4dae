package live_test

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/reprise-tool/reprise/capture/live"
)

// Capture HTTP packets to and from port 8080 on eth0 until the context
// ends. Needs root or CAP_NET_RAW; without it the error says what to do
// instead.
func ExampleOpen() {
	ctx := context.Background()
	src, err := live.Open(ctx, live.Config{Interface: "eth0", Ports: []uint16{8080}})
	var perm *live.PermissionError
	if errors.As(err, &perm) {
		fmt.Println(err) // suggests 'reprise proxy' or --pcap
		return
	}
	if err != nil {
		panic(err)
	}
	defer src.Close()
	fmt.Println("filter:", src.Filter())
	for {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if errors.Is(err, live.ErrTimeout) {
			continue // quiet for 100ms: a chance to flush idle state
		}
		if err != nil {
			panic(err)
		}
		_ = data // hand to the packet pipeline, e.g. capture's
		_ = ci.Timestamp
	}
	received, dropped, _ := src.Drops()
	fmt.Println("kernel received", received, "dropped", dropped)
}
