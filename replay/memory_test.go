package replay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/corrplan"
)

// writeDenseRecording writes n exchanges recorded at 30,000 a second over
// 64 connections (wrk -c64's, the benchmark), each answered with
// a 5 KB JSON body that carries a
// per-response id nobody sends back (the nginx case), to a
// recording file made without a correlation plan (an older recording).
func writeDenseRecording(t testing.TB, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dense.rpz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := session.NewWriter(f, session.Metadata{Source: "test:dense"}, session.Compression(1))
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 5*1024-64)
	reqHdr := session.Headers{{Name: "Host", Value: "x"}, {Name: "User-Agent", Value: "dense"}}
	respHdr := session.Headers{{Name: "Content-Type", Value: "application/json"}}
	for i := range n {
		at := t0 + int64(i)*33_333
		body := fmt.Sprintf(`{"ok":true,"id":"%032x","pad":"%s"}`, i, pad)
		ex := &session.Exchange{
			Conn:     session.Conn{ID: uint64(i % 64)},
			Index:    i / 64,
			Request:  session.Request{Method: "GET", Target: "/json", Proto: "HTTP/1.1", Header: reqHdr},
			Response: session.Response{Status: 200, Proto: "HTTP/1.1", Header: respHdr, Body: []byte(body), BodySize: int64(len(body))},
			Timing:   session.Timing{RequestStart: at, RequestEnd: at, ResponseStart: at + 20_000, ResponseEnd: at + 25_000},
		}
		if err := w.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// heapWatch samples the heap's objects every 10ms and stops the replay
// once they pass limit, so that an engine without bounds fails the test
// instead of exhausting the machine.
type heapWatch struct {
	peak  uint64 // heap objects, live and not yet collected
	live  uint64 // live heap as of the latest collection
	stop  chan struct{}
	done  sync.WaitGroup
	limit uint64
}

func watchHeap(r *Replayer, limit uint64) *heapWatch {
	runtime.GC()
	h := &heapWatch{stop: make(chan struct{}), limit: limit}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			v := sample[0].Value.Uint64()
			h.peak = max(h.peak, v)
			h.live = max(h.live, sample[1].Value.Uint64())
			if v > 4*limit {
				r.Stop(fmt.Sprintf("heap %d MiB, far over the bound", v>>20))
			}
		}
	}()
	return h
}

func (h *heapWatch) end() (peak, live uint64) {
	close(h.stop)
	h.done.Wait()
	return h.peak, h.live
}

// TestMemoryBounded replays a long dense recording (30,000 requests a
// second, 5 KB bodies, no plan stored: the survey computes it) at --speed
// max and, for a second, at 1x, and asserts that the heap stays bounded:
// the look-ahead window is bounded in exchanges and bytes, and the
// recorded bodies the plan learns nothing from are dropped as they are
// read. Without those bounds the 5s window alone held 150,000 exchanges
// and their bodies (750 MB). The bounds guard against memory that grows
// with the recording (they stop at 4x before the machine suffers) with
// room for a shared machine's collector running late (the live heap is
// 25-33 MB here); the target, a peak RSS within 64 MiB, is
// TestMemoryPeakRSS's and BenchmarkNginx's to measure, on the replay
// command in a process of its own. The recording has 64 connections: the
// replay keeps a live connection per recorded one, with 32 KB of buffers
// each (replay/wire), so a recording of a thousand connections open at
// once needs 32 MB more, which these bounds do not cover.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 100,000 requests")
	}
	// 100,000 exchanges are twelve times the window's bound and 500 MB
	// of recorded bodies; REPRISE_LONG=1 replays the 300,000.
	n := 100_000
	if os.Getenv("REPRISE_LONG") != "" {
		n = 300_000
	}
	if raceEnabled {
		n = 40_000 // still five times the window's bound, and 25 times its bytes
	}
	t0w := time.Now()
	path := writeDenseRecording(t, n)
	rd, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := SurveyRecording(context.Background(), rd)
	rd.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !sv.PlanComputed || len(sv.Plan.Rules) != 0 {
		t.Fatalf("plan computed %v, rules %v: want a computed plan with none", sv.PlanComputed, sv.Plan.Rules)
	}
	t.Logf("recording of %d exchanges written and surveyed in %v", n, time.Since(t0w).Round(time.Millisecond))
	target := startTrivial(t)
	const liveLimit, heapLimit = 40 << 20, 80 << 20
	for _, tc := range []struct {
		name  string
		pacer Pacer
		n     int // exchanges replayed (a range cuts the 1x run short)
	}{
		{"max", Max{}, n},
		{"1x", Speed(1), n / 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := session.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			span := time.Duration(int64(tc.n-1) * 33_333)
			r, err := New(target, WithPacer(tc.pacer), WithMaxInFlight(64), WithPlan(sv.Plan), WithRange(0, span))
			if err != nil {
				t.Fatal(err)
			}
			h := watchHeap(r, heapLimit)
			rep, err := r.Run(context.Background(), rd)
			peak, live := h.end()
			if err != nil {
				t.Fatal(err)
			}
			var mem MemoryReport
			if rep.Plan != nil {
				mem = rep.Plan.Memory
			}
			t.Logf("%d responses in %.0fms; peak heap objects %.1f MiB, live %.1f MiB; window released early: %d by exchanges, %d by bytes; %d bodies dropped",
				rep.Requests.Responses, rep.DurationMS, float64(peak)/(1<<20), float64(live)/(1<<20), mem.ByExchanges, mem.ByBytes, mem.BodiesDropped)
			if rep.Requests.Responses != uint64(tc.n) || !rep.Completed {
				t.Errorf("replayed %+v, want %d responses: %s", rep.Requests, tc.n, rep.Failure)
			}
			if live > liveLimit || peak > heapLimit {
				t.Errorf("peak live heap %.1f MiB (bound %d), heap objects %.1f MiB (bound %d)", float64(live)/(1<<20), liveLimit>>20, float64(peak)/(1<<20), heapLimit>>20)
			}
		})
	}
}

// spyFilter is a recording's reader that notes the body filters the
// replay sets: one for the run, nil at its end.
type spyFilter struct {
	*session.MultiReader
	set []bool
}

func (s *spyFilter) FilterResponseBodies(keep func(*session.Exchange) bool) bool {
	s.set = append(s.set, keep != nil)
	return s.MultiReader.FilterResponseBodies(keep)
}

// TestPlanSkipsBodiesInReader replays planFlow from a recording file: the
// reader leaves out the listings' bodies (the plan learns nothing from
// them) and keeps the login's, whose token the replay learns and
// substitutes, as TestPlanLearnsOnlyPlanned does from memory.
func TestPlanSkipsBodiesInReader(t *testing.T) {
	s := planTarget(t)
	b := corrplan.NewBuilder(0)
	for _, ex := range planFlow() {
		b.Add(ex)
	}
	path := writeRecording(t, "test", planFlow())
	rd, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	spy := &spyFilter{MultiReader: rd}
	rep := run(t, s.URL, spy, WithPacer(Max{}), WithPlan(b.Plan()))
	if got := s.find(t, "/list").Header.Get("Authorization"); got != "Bearer live-token-9876543210" {
		t.Errorf("Authorization %q: the planned token was not substituted", got)
	}
	if rep.Correlation.Learned != 1 || rep.Plan == nil || rep.Plan.Memory.BodiesDropped != 2 {
		t.Errorf("learned %d, plan report %+v: want the token learned and both listings' bodies dropped", rep.Correlation.Learned, rep.Plan)
	}
	if fmt.Sprint(spy.set) != "[true false]" {
		t.Errorf("filters set %v, want one for the run and nil at its end", spy.set)
	}
}
