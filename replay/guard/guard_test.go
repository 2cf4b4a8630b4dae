package guard

import (
	"context"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// feed adds n observations spread over second s after t0.
func feed(g *Guard, s, n int, o Observation) {
	for i := 0; i < n; i++ {
		o.At = t0.Add(time.Duration(s)*time.Second + time.Duration(i)*time.Second/time.Duration(n+1))
		g.Observe(o)
	}
}

var (
	ok200   = Observation{Status: 200, FromDue: 20 * time.Millisecond, FromSend: 19 * time.Millisecond, Lag: time.Millisecond}
	fail503 = Observation{Status: 503, FromDue: 30 * time.Millisecond}
	slow    = Observation{Status: 200, FromDue: 3 * time.Second, FromSend: 3 * time.Second}
	timeout = Observation{Err: ErrTimeout, FromDue: 10 * time.Second}
)

func TestGuard(t *testing.T) {
	type step struct {
		sec int
		n   int
		o   Observation
	}
	tests := []struct {
		name  string
		rules string
		steps []step
		check int    // second at which Check runs
		trip  string // rule expected to trip, "" for none
		value string // its value as written
	}{
		// A healthy run trips nothing.
		{"healthy", "error_rate>5%,p99>2s", []step{{0, 50, ok200}, {1, 50, ok200}}, 1, "", ""},
		// 30% errors over the window trip error_rate.
		{"errors", "error_rate>5%,p99>2s", []step{{0, 70, ok200}, {1, 30, fail503}}, 1, "error_rate>5%", "30%"},
		// One early error among few requests does not trip: minimum sample.
		{"min sample", "error_rate>5%", []step{{0, 1, fail503}, {0, 5, ok200}}, 0, "", ""},
		// Errors that left the window no longer count.
		{"slid out", "error_rate>5%", []step{{0, 50, fail503}, {11, 50, ok200}}, 11, "", ""},
		// p99 over 2 s.
		{"p99", "error_rate>5%,p99>2s", []step{{0, 95, ok200}, {1, 5, slow}}, 1, "p99>2s", "3.015s"}, // HDR reports the bucket's upper edge
		// A count of timeouts needs no minimum sample.
		{"timeouts count", "timeouts>2", []step{{0, 3, timeout}}, 0, "timeouts>2", "3"},
		// Timeouts as a share.
		{"timeouts share", "timeouts>=10%", []step{{0, 18, ok200}, {0, 2, timeout}}, 0, "timeouts>=10%", "10%"},
		// 5xx rate ignores transport errors.
		{"5xx", "status_5xx_rate>10%", []step{{0, 18, ok200}, {0, 5, timeout}}, 0, "", ""},
		// rps floor waits for one full window, then trips.
		{"rps early", "rps<10", []step{{0, 5, ok200}}, 3, "", ""},
		{"rps", "rps<10", []step{{0, 5, ok200}, {10, 5, ok200}}, 10, "rps<10", "0.5"},
		// Lag from sends.
		{"lag", "lag>5s", []step{{0, 30, Observation{Status: 200, Lag: 6 * time.Second}}}, 0, "lag>5s", "6.029s"},
		// none never trips.
		{"none", "none", []step{{0, 100, fail503}}, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := ParseRules(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			g, err := New(rules, WithWindow(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			g.Check(t0) // the run starts
			for _, s := range tt.steps {
				feed(g, s.sec, s.n, s.o)
			}
			trip, ok := g.Check(t0.Add(time.Duration(tt.check)*time.Second + 999*time.Millisecond))
			if tt.trip == "" {
				if ok {
					t.Fatalf("tripped: %s", trip.Reason())
				}
				return
			}
			if !ok {
				t.Fatalf("did not trip; stats %+v", g.Window().Stats(t0.Add(time.Duration(tt.check)*time.Second)))
			}
			if trip.RuleText != tt.trip || trip.ValueText() != tt.value {
				t.Errorf("tripped %s at %s, want %s at %s", trip.RuleText, trip.ValueText(), tt.trip, tt.value)
			}
			select {
			case <-g.Tripped():
			default:
				t.Error("Tripped() not closed")
			}
			// It trips once: a later check returns the same trip.
			again, _ := g.Check(t0.Add(time.Hour))
			if again.At != trip.At {
				t.Error("a second trip replaced the first")
			}
		})
	}
}

func TestBacklogLag(t *testing.T) {
	rules, _ := ParseRules("lag>5s")
	g, _ := New(rules)
	g.Check(t0)
	// Nothing completes, but the oldest due request is 7 s late.
	g.Backlog(t0.Add(3*time.Second), 7*time.Second)
	trip, ok := g.Check(t0.Add(3 * time.Second))
	if !ok || trip.Value != 7 {
		t.Fatalf("backlog lag did not trip: %v %+v", ok, trip)
	}
	want := "lag was 7s (limit >5s) over the last 10s (0 requests) at 12:00:03Z"
	if trip.Reason() != want {
		t.Errorf("reason %q, want %q", trip.Reason(), want)
	}
	ae := &AbortError{Trip: trip}
	if !strings.Contains(ae.Error(), "lag was 7s") {
		t.Errorf("abort error %q", ae)
	}
}

func TestWindowStats(t *testing.T) {
	w, _ := NewWindow(5 * time.Second)
	for i := 1; i <= 100; i++ {
		w.Add(Observation{At: t0.Add(time.Duration(i) * 10 * time.Millisecond), Status: 200, FromDue: time.Duration(i) * time.Millisecond})
	}
	st := w.Stats(t0.Add(time.Second))
	if st.Requests != 100 || st.RPS != 20 {
		t.Errorf("requests %d rps %v", st.Requests, st.RPS)
	}
	near := func(got, want time.Duration) bool { return got >= want*98/100 && got <= want*102/100 }
	if !near(st.P50, 50*time.Millisecond) || !near(st.P99, 99*time.Millisecond) || !near(st.Max, 100*time.Millisecond) {
		t.Errorf("percentiles p50 %v p99 %v max %v", st.P50, st.P99, st.Max)
	}
	// An observation older than the window is counted as late, not kept.
	w.Add(Observation{At: t0.Add(10 * time.Second), Status: 200})
	w.Add(Observation{At: t0.Add(5 * time.Second), Status: 500})
	if w.Late() != 1 {
		t.Errorf("late %d", w.Late())
	}
	if _, err := NewWindow(0); err == nil {
		t.Error("zero window accepted")
	}
}

func TestWatch(t *testing.T) {
	rules, _ := ParseRules("timeouts>0")
	g, _ := New(rules)
	g.Observe(Observation{At: time.Now(), Err: ErrTimeout})
	got := make(chan Trip, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Watch(ctx, 10*time.Millisecond, func(tr Trip) { got <- tr })
	select {
	case tr := <-got:
		if tr.RuleText != "timeouts>0" {
			t.Errorf("trip %+v", tr)
		}
	default:
		t.Fatal("Watch returned without a trip")
	}
}

func BenchmarkObserve(b *testing.B) {
	g, _ := New(DefaultRules())
	o := ok200
	o.At = t0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		o.At = t0.Add(time.Duration(i) * time.Microsecond)
		g.Observe(o)
	}
}

func BenchmarkCheck(b *testing.B) {
	g, _ := New(DefaultRules())
	for s := 0; s < 10; s++ {
		feed(g, s, 1000, ok200)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		g.Check(t0.Add(9 * time.Second))
	}
}

func TestNewObservation(t *testing.T) {
	due := t0
	o := NewObservation(due, due.Add(2*time.Millisecond), due.Add(12*time.Millisecond), 200, "")
	if o.Lag != 2*time.Millisecond || o.FromSend != 10*time.Millisecond || o.FromDue != 12*time.Millisecond || o.failed() {
		t.Errorf("%+v", o)
	}
	// Never sent (a connect error before the send): lag runs to the finish.
	o = NewObservation(due, time.Time{}, due.Add(time.Second), 0, "connect")
	if o.Lag != time.Second || o.FromSend != 0 || !o.failed() {
		t.Errorf("%+v", o)
	}
	// Abandoned by a stop: not the target's failure.
	if NewObservation(due, due, due, 0, "canceled").failed() {
		t.Error("a canceled request counted as a failure")
	}
}
