package shadow

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/live"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/sim"
)

// Live capture on lo (capture/live and the packet pipeline, as 'reprise
// shadow --iface' wires them): the simulator drives the shop directly while the
// mirror captures its port and mirrors every session to a second shop,
// which sees the same logins, refreshes and logouts with zero violations.
// It needs root or CAP_NET_RAW (and Linux), and skips with the reason
// otherwise.
func TestLiveLoopbackShadow(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the simulator for a few seconds")
	}
	primary := shoptest.StartShop(t, mirrorShopCfg())
	second := shoptest.StartShop(t, mirrorShopCfg())
	port := uint16(primary.Addr().(*net.TCPAddr).Port)
	probe, err := live.Open(context.Background(), live.Config{Interface: "lo", Ports: []uint16{port}})
	var perm *live.PermissionError
	if errors.As(err, &perm) || errors.Is(err, live.ErrLinuxOnly) {
		t.Skipf("live capture not permitted here (run as root or with CAP_NET_RAW on Linux): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	m, err := New(Config{Shadow: second.URL(), AllowWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	src, err := live.Open(ctx, live.Config{Interface: "lo", Ports: []uint16{port}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pl, err := capture.FromPackets(ctx, src, capture.WithPorts(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		sum, err := m.Run(ctx, pl)
		sum.Source = map[string]uint64{"exchanges": pl.Counters().Exchanges}
		done <- result{sum, err}
	}()
	time.Sleep(300 * time.Millisecond) // the socket is open and filtering
	if _, err := sim.Run(context.Background(), simCfg(primary.URL(), 6, simBound)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the last packets reach the socket; ending flushes the rest
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	ps, ss := primary.Stats(), second.Stats()
	t.Logf("primary %d logins %d refreshes %d logouts; shadow %d/%d/%d; mirror %+v source %v",
		ps.Logins, ps.Refreshes, ps.Logouts, ss.Logins, ss.Refreshes, ss.Logouts, r.sum.Stats, r.sum.Source)
	if ss.Violations.Total() != 0 {
		t.Errorf("shadow violations %+v, want none", ss.Violations)
	}
	if ps.Logins == 0 || ss.Logins != ps.Logins || ss.Refreshes != ps.Refreshes || ss.Logouts != ps.Logouts {
		t.Errorf("shadow saw %d logins %d refreshes %d logouts, primary %d %d %d",
			ss.Logins, ss.Refreshes, ss.Logouts, ps.Logins, ps.Refreshes, ps.Logouts)
	}
	if got := r.sum.Compare.Reported(); len(got) != 0 {
		t.Errorf("identical shops reported as differing: %q", got)
	}
}
