package proxy_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/sim"
	"github.com/reprise-tool/reprise/session"
)

// simConfig is a bounded run: a few dozen users squeezed into about a
// second, stopping by itself.
func simConfig(base string) sim.Config {
	return sim.Config{
		BaseURL:       base,
		Users:         40,
		Seed:          7,
		ArrivalWindow: 300 * time.Millisecond,
		Think:         sim.LogNormal{Median: 2 * time.Millisecond, Sigma: 0.5},
		Duration:      30 * time.Second,
		MaxRequests:   20_000,
		NoReactive:    true,
	}
}

// TestSimulatorThroughProxy is the acceptance test: the simulated
// users through the recording proxy get the same violation-free run as
// without it, and the recording holds exactly the requests the shop
// served.
func TestSimulatorThroughProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator twice")
	}
	ctx := context.Background()

	direct := shoptest.StartShop(t, shop.Config{})
	dTruth, err := sim.Run(ctx, simConfig(direct.URL()))
	if err != nil {
		t.Fatal(err)
	}
	dStats := direct.Stats()

	proxied := shoptest.StartShop(t, shop.Config{})
	out := filepath.Join(t.TempDir(), "shop.rpz")
	addr, stop := shoptest.StartRecord(t, proxy.RecordConfig{Upstream: proxied.URL(), Output: out})
	pTruth, err := sim.Run(ctx, simConfig("http://"+addr))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	pStats := proxied.Stats()

	t.Logf("direct: %d requests, stop %s; through the proxy: %d requests, stop %s; recorded %d",
		dStats.Requests, dTruth.Stop, pStats.Requests, pTruth.Stop, sum.Exchanges)
	if dTruth.Stop != "done" || pTruth.Stop != "done" {
		t.Fatalf("runs did not finish: direct %s, proxied %s", dTruth.Stop, pTruth.Stop)
	}
	if v := dStats.Violations.Total(); v != 0 {
		t.Fatalf("direct run has %d violations: %+v", v, dStats.Violations)
	}
	if v := pStats.Violations.Total(); v != 0 {
		t.Fatalf("run through the proxy has %d violations: %+v", v, pStats.Violations)
	}
	if pStats.Requests != dStats.Requests || pStats.Logins != dStats.Logins || pStats.Orders != dStats.Orders || pStats.Logouts != dStats.Logouts {
		t.Errorf("runs differ: requests %d/%d, logins %d/%d, orders %d/%d, logouts %d/%d",
			dStats.Requests, pStats.Requests, dStats.Logins, pStats.Logins, dStats.Orders, pStats.Orders, dStats.Logouts, pStats.Logouts)
	}
	if pStats.Requests != pTruth.Requests {
		t.Errorf("shop served %d requests, simulator sent %d", pStats.Requests, pTruth.Requests)
	}

	// The recording holds exactly what the shop served, none incomplete.
	rd, err := session.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var n, incomplete int64
	for _, x := range shoptest.Collect(t, rd) {
		n++
		if x.Flags.Incomplete() {
			incomplete++
		}
	}
	if n != pStats.Requests || incomplete != 0 || sum.Dropped != 0 {
		t.Fatalf("recording holds %d exchanges (%d incomplete, %d dropped); the shop served %d", n, incomplete, sum.Dropped, pStats.Requests)
	}
	if md := rd.Metadata(); len(md) != 1 || md[0].Counters.Exchanges != uint64(n) {
		t.Fatalf("metadata counters %+v, want %d exchanges", md, n)
	}
}
