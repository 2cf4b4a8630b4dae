package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/replay/compare"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
)

// A scale ramp adds whole sessions: a session that begins before the ramp
// reaches its clone is not cloned, one that begins after is.
func TestScaleRamp(t *testing.T) {
	srv := newScripted(t, nil)
	rp, err := ramp.Parse("scale=1:1s,scale=3")
	if err != nil {
		t.Fatal(err)
	}
	src := source(
		rec("early", "GET", "/early/1", 0, 1), rec("early", "GET", "/early/2", 13000, 13001), // begins under scale 1
		rec("late", "GET", "/late/1", 12000, 12001), rec("late", "GET", "/late/2", 12500, 12501), // begins under scale 3
	)
	// At 10x the ramp reaches scale 3 at 1s of wall time, 10s into the
	// recording.
	rep := run(t, srv.URL, src, WithScaleRamp(rp), WithPacer(Speed(10)), WithCloneStagger(0))
	count := map[string]int{}
	for _, a := range srv.arrivals() {
		count[a.Path]++
	}
	want := map[string]int{"/early/1": 1, "/early/2": 1, "/late/1": 3, "/late/2": 3}
	for p, n := range want {
		if count[p] != n {
			t.Errorf("%s sent %d times, want %d (all: %v)", p, count[p], n, count)
		}
	}
	if rep.Filtered.ByScaleRamp != 4 || len(rep.Stages) != 2 {
		t.Errorf("filtered %+v stages %+v", rep.Filtered, rep.Stages)
	}
}

// --max-sessions: with one slot, two sessions never have work on the
// target at once, and the wait is reported and shows as lag.
func TestMaxSessions(t *testing.T) {
	var mu sync.Mutex
	active, peak := map[string]bool{}, 0
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		s := r.Header.Get("X-Session")
		mu.Lock()
		active[s] = true
		peak = max(peak, len(active))
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		delete(active, s)
		mu.Unlock()
	})
	var ex []*session.Exchange
	for i := 0; i < 4; i++ {
		s := fmt.Sprintf("s%d", i)
		ex = append(ex, rec(s, "GET", "/"+s, 0, 40, withHeader("X-Session", s)))
	}
	rep := run(t, srv.URL, source(ex...), WithMaxSessions(1))
	if peak != 1 {
		t.Errorf("%d sessions on the target at once, want 1", peak)
	}
	if rep.Limits.MaxSessions != 1 || rep.Limits.SessionWaits.Waited == 0 || rep.Lag.Max < 30 {
		t.Errorf("limits %+v, lag max %.1fms: the session cap's wait should show", rep.Limits, rep.Lag.Max)
	}
}

// The figures 'reprise check' reads: sends per second, refreshes among
// them, inter-arrival gaps, think times and session lengths.
func TestReportSendFigures(t *testing.T) {
	srv := newScripted(t, nil)
	refresh := func(ex *session.Exchange) {
		ex.Tokens = []session.TokenEvent{{Kind: session.TokenRefresh, Name: "refresh_token"}}
	}
	src := source(
		rec("a", "GET", "/a1", 0, 5), rec("a", "POST", "/auth/refresh", 20, 25, refresh), rec("a", "GET", "/a3", 40, 45),
		rec("b", "GET", "/b1", 10, 15), rec("b", "GET", "/b2", 30, 35),
	)
	var obs results
	rep := run(t, srv.URL, src, WithPacer(Speed(2)), WithObserver(&obs))
	var sum, refreshes uint64
	for i, n := range rep.PerSecond {
		sum += n
		refreshes += rep.RefreshesPerSecond[i]
	}
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"per_second adds up to the requests sent", sum, 5},
		{"one refresh", refreshes, 1},
		{"a gap between each two sends", rep.InterArrival.Count, 4},
		{"the same gaps scaled by the speed", rep.InterArrivalScaled.Count, 4},
		{"a think time before each later request of a session", rep.ThinkTime.Count, 3},
		{"the same think times scaled by the speed", rep.ThinkTimeScaled.Count, 3},
		{"one length per session", rep.SessionLength.Count, 2},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	// The schedule: at 2x, the recording's 10ms gaps are due 5ms apart on
	// the wall. Due times are fixed before anything is sent, so this holds
	// on any machine.
	var dues []time.Time
	var lag time.Duration
	for _, r := range obs.get() {
		dues = append(dues, r.Due)
		lag = max(lag, r.Sent.Sub(r.Due))
	}
	slices.SortFunc(dues, time.Time.Compare)
	for i := 1; i < len(dues); i++ {
		if g := dues[i].Sub(dues[i-1]); g != 5*time.Millisecond {
			t.Errorf("requests %d and %d due %v apart, want 5ms", i-1, i, g)
		}
	}
	// Each scaled gap is its wall gap times the speed, whatever the
	// scheduler did to the sends (within the histograms' precision).
	near := func(scaled, wall float64) bool { return math.Abs(scaled-2*wall) <= 0.005+0.01*2*wall }
	ia, is := rep.InterArrival, rep.InterArrivalScaled
	if !near(is.Min, ia.Min) || !near(is.P50, ia.P50) || !near(is.Max, ia.Max) || !near(is.Mean, ia.Mean) {
		t.Errorf("scaled inter-arrival %+v, want the wall one times 2: %+v", is, ia)
	}
	// Sent on time, the wall gaps are the schedule's: scaled back by the
	// speed they are near the recording's 10ms (generous bounds). A loaded
	// machine that stalls the sender sends late and bunched, which says
	// nothing of the figures: logged, not failed.
	if m := is.P50; lag < 2*time.Millisecond && (m < 5 || m > 30) {
		t.Errorf("scaled inter-arrival p50 %.1fms, want near 10ms (sends at most %v late)", m, lag)
	} else if m < 5 || m > 30 {
		t.Logf("scaled inter-arrival p50 %.1fms: sends up to %v late bunched up", m, lag)
	}
	if len(rep.Series) == 0 || rep.Series[0].Achieved != 5 {
		t.Errorf("series %+v", rep.Series)
	}
}

// A guard trip stops issuing, returns *guard.AbortError (exit code 3) and
// marks the report; cancelling the context under a drain is an interrupt.
func TestGuardAndInterrupt(t *testing.T) {
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	var ex []*session.Exchange
	for i := 0; i < 400; i++ {
		ex = append(ex, rec(fmt.Sprintf("s%d", i), "GET", fmt.Sprintf("/r%d", i), float64(i)*5, float64(i)*5+1))
	}
	rules, err := guard.ParseRules("error_rate>50%")
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.New(rules, guard.WithWindow(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(srv.URL, WithGuard(g), WithDrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), source(ex...))
	var ab *guard.AbortError
	if !errors.As(err, &ab) {
		t.Fatalf("Run: %v, want a guard's AbortError", err)
	}
	if rep.Abort == nil || rep.Abort.Rule != "error_rate>50%" || rep.Requests.NotSent == 0 || rep.Guards != "error_rate>50%" {
		t.Errorf("abort %+v requests %+v guards %q", rep.Abort, rep.Requests, rep.Guards)
	}

	// The caller's context ends: an orderly stop, reported as an interrupt.
	srv2 := newScripted(t, nil)
	r2, err := New(srv2.URL, WithDrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	rep, err = r2.Run(ctx, source(ex...))
	var in *InterruptedError
	if !errors.As(err, &in) || rep.Abort == nil || rep.Abort.Kind != AbortInterrupt {
		t.Errorf("Run: %v, abort %+v", err, rep.Abort)
	}
}

// --compare: a field the target answers differently from the recording is
// reported; one that only differs by a live value is not.
func TestCompareWithRecording(t *testing.T) {
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"price": 12, "name": "tea"}`)
	})
	var ex []*session.Exchange
	for i := 0; i < 5; i++ {
		ex = append(ex, rec("s", "GET", "/item", float64(i)*5, float64(i)*5+1, withResponse(200, "application/json", `{"price": 10, "name": "tea"}`)))
	}
	c, err := compare.New()
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, srv.URL, source(ex...), WithPacer(Max{}), WithCompare(c))
	if rep.Compare == nil || rep.Compare.Compared != 5 {
		t.Fatalf("compare %+v", rep.Compare)
	}
	got := strings.Join(rep.Compare.Reported(), ";")
	if !strings.Contains(got, "$.price") || strings.Contains(got, "$.name") {
		t.Errorf("reported %q, want $.price alone", got)
	}
	var sum strings.Builder
	rep.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "5 differ beyond noise") {
		t.Errorf("summary:\n%s", sum.String())
	}
}

// Interrupt is an orderly stop: nothing new is sent, the request in
// flight finishes within the drain, and Run says it was interrupted.
// Cancelling the context instead aborts the request in flight, and the
// report says it was abandoned.
func TestInterruptAndCancel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cancel    bool // cancel the context after the interrupt
		abandoned bool
	}{
		{name: "interrupt drains"},
		{name: "cancel aborts", cancel: true, abandoned: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(400 * time.Millisecond):
				case <-r.Context().Done():
				}
			})
			var ex []*session.Exchange
			for i := 0; i < 20; i++ {
				ex = append(ex, rec(fmt.Sprintf("s%d", i), "GET", fmt.Sprintf("/r%d", i), float64(i)*100, float64(i)*100+1))
			}
			r, err := New(srv.URL, WithDrainTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				if !srv.waitFor("/r0") {
					return
				}
				r.Interrupt(nil)
				if tc.cancel {
					time.Sleep(50 * time.Millisecond)
					cancel()
				}
			}()
			rep, err := r.Run(ctx, source(ex...))
			var in *InterruptedError
			if !errors.As(err, &in) || !errors.Is(err, guard.ErrInterrupted) {
				t.Fatalf("Run: %v, want an InterruptedError", err)
			}
			if rep.Abort == nil || rep.Abort.Kind != AbortInterrupt || rep.Abort.Abandoned != tc.abandoned {
				t.Fatalf("abort %+v", rep.Abort)
			}
			if rep.Requests.NotSent == 0 {
				t.Errorf("requests %+v: the interrupt stopped nothing", rep.Requests)
			}
			if ok := rep.Requests.Responses > 0 && rep.Requests.Errors == 0; ok == tc.cancel {
				t.Errorf("requests %+v errors %v: cancel %v", rep.Requests, rep.Errors, tc.cancel)
			}
		})
	}
}
