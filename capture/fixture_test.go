package capture_test

import (
	"context"
	"testing"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
)

// TestShopFixturePcap imports the demo shop's fixture capture (real
// loopback traffic of the simulated users, see fixtures/README.md) and
// checks it holds exactly the requests the simulator's ground truth lists,
// every one complete.
func TestShopFixturePcap(t *testing.T) {
	truth := shoptest.ReadTruthFile(t, "../fixtures/testdata/shop.truth.json")
	src, err := pcapfile.Open("../fixtures/testdata/shop.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p, err := capture.FromPackets(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	var n, incomplete int64
	for _, x := range shoptest.Collect(t, p) {
		n++
		if x.Flags.Incomplete() || len(x.Warnings) > 0 {
			incomplete++
			t.Logf("%s %s: flags %v, warnings %v", x.Request.Method, x.Request.Target, x.Flags, x.Warnings)
		}
	}
	if n != truth.Requests || incomplete != 0 {
		t.Errorf("got %d exchanges (%d incomplete or warned), the simulator sent %d", n, incomplete, truth.Requests)
	}
}
