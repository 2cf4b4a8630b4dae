//go:build linux

package capture_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/live"
	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/sim"
	"github.com/reprise-tool/reprise/session"
)

// openLo opens a live capture of port on lo until ctx ends or the test
// does, skipping the test when capturing is not permitted (it needs root
// or CAP_NET_RAW).
func openLo(ctx context.Context, t *testing.T, port int) *live.Source {
	t.Helper()
	src, err := live.Open(ctx, live.Config{Interface: "lo", Ports: []uint16{uint16(port)}})
	var perm *live.PermissionError
	if errors.As(err, &perm) {
		t.Skipf("live capture not permitted here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// TestLiveLoopbackShop is the live acceptance test: the shop and
// its simulated users run on lo while Reprise captures with AF_PACKET; the
// recording must hold exactly the requests the shop served, none
// incomplete, and the kernel must drop nothing. It needs root or
// CAP_NET_RAW and skips with a message otherwise. The run is bounded by
// request count and time.
func TestLiveLoopbackShop(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the simulator for a few seconds")
	}
	srv := shoptest.StartShop(t, shop.Config{})
	port := srv.Addr().(*net.TCPAddr).Port

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	src := openLo(ctx, t, port)
	p, err := capture.FromPackets(ctx, src, capture.WithPorts(port))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "live.rpz")
	fw, err := session.Create(out, session.Metadata{Source: "iface:lo", Filter: "port " + strconv.Itoa(port)}, session.Compression(1))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		res capture.RecordResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := capture.Record(ctx, p, fw)
		done <- result{res, err}
	}()

	cfg := sim.Config{
		BaseURL:       srv.URL(),
		Users:         300,
		Seed:          11,
		ArrivalWindow: 200 * time.Millisecond,
		Think:         sim.LogNormal{Median: time.Millisecond, Sigma: 0.3},
		Duration:      20 * time.Second,
		MaxRequests:   12_000,
		NoReactive:    true,
	}
	if raceEnabled {
		// The race detector slows capture more than the shop: offer less.
		cfg.Users, cfg.Think.Median = 20, 20*time.Millisecond
	}
	began := time.Now()
	truth, err := sim.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(began)
	time.Sleep(500 * time.Millisecond) // let the last packets through the ring
	stop()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	t.Logf("shop served %d requests in %v (%.0f/s); captured %d exchanges, %d packets, %d dropped by the kernel, %d duplicates",
		st.Requests, elapsed.Round(time.Millisecond), float64(st.Requests)/elapsed.Seconds(),
		r.res.Counters.Exchanges, r.res.Counters.PacketsSeen, r.res.Counters.PacketsDropped, r.res.Counters.PacketsDuplicate)
	if truth.Requests != st.Requests {
		t.Errorf("simulator sent %d requests, shop served %d", truth.Requests, st.Requests)
	}
	if r.res.Counters.PacketsDropped != 0 {
		t.Errorf("the kernel dropped %d packets", r.res.Counters.PacketsDropped)
	}

	rd, err := session.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var n, incomplete int64
	var last int64
	for _, x := range shoptest.Collect(t, rd) {
		n++
		if x.Flags.Incomplete() {
			incomplete++
		}
		if x.Timing.RequestStart < last {
			t.Errorf("exchange %d out of time order", n)
		}
		last = x.Timing.RequestStart
	}
	if n != st.Requests || incomplete != 0 {
		t.Fatalf("recording holds %d exchanges (%d incomplete); the shop served %d", n, incomplete, st.Requests)
	}
}
