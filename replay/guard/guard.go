package guard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// DefaultMinSamples is how many requests a window must hold before rules
// on rates, percentiles and lag are evaluated.
const DefaultMinSamples = 20

// Option configures a Guard.
type Option func(*options) error

type options struct {
	window     time.Duration
	minSamples int
}

// WithWindow sets the sliding window (--abort-window), 1s to 10m.
func WithWindow(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second || d > 10*time.Minute {
			return fmt.Errorf("abort window %v is outside 1s..10m: give --abort-window like 10s", d)
		}
		o.window = d
		return nil
	}
}

// WithMinSamples sets how many requests a window needs before rate,
// percentile and lag rules are evaluated (at least 1).
func WithMinSamples(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("minimum sample %d: give at least 1", n)
		}
		o.minSamples = n
		return nil
	}
}

// Trip is the first rule that held: what stopped the replay.
type Trip struct {
	Rule Rule `json:"-"`
	// RuleText is Rule in the --abort-on grammar, e.g. "p99>2s".
	RuleText string `json:"rule"`
	// Value is what was measured and Threshold what the rule allows,
	// both in the metric's base unit (a fraction, seconds, a count).
	Value     float64       `json:"value"`
	Threshold float64       `json:"threshold"`
	At        time.Time     `json:"at"`
	Window    time.Duration `json:"window"`
	// Requests is how many requests the window held.
	Requests int `json:"requests"`
	// ReasonText is Reason(), kept for reports.
	ReasonText string `json:"reason"`
}

// ValueText writes Value in the rule's unit, e.g. "34.5%" or "2.31s".
func (t Trip) ValueText() string { return t.Rule.format(t.Value) }

// Reason says in one sentence what tripped, e.g. "error_rate was 34.5%
// (limit >5%) over the last 10s (812 requests) at 12:03:04Z".
func (t Trip) Reason() string {
	return fmt.Sprintf("%s was %s (limit %s%s) over the last %v (%d requests) at %s",
		t.Rule.Metric, t.ValueText(), t.Rule.Op, t.Rule.format(t.Threshold), t.Window, t.Requests,
		t.At.UTC().Format("15:04:05Z"))
}

// AbortError is the error a replay returns when a guard stopped it. The
// CLI maps it to its documented exit code (3); the library does not know
// exit codes.
type AbortError struct {
	Trip Trip
}

func (e *AbortError) Error() string { return "stopped by a guard: " + e.Trip.Reason() }

// Guard evaluates rules over a sliding window and trips once. Feed it with
// Observe (from any goroutine) and call Check every tick, or run Watch.
// Safe for concurrent use.
type Guard struct {
	rules      Rules
	win        *Window
	minSamples int

	mu      sync.Mutex
	start   time.Time
	trip    *Trip
	tripped chan struct{}
}

// New returns a guard for rules; an empty Rules gives a guard that never
// trips (--abort-on none).
func New(rules Rules, opts ...Option) (*Guard, error) {
	o := options{window: DefaultWindow, minSamples: DefaultMinSamples}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	w, err := NewWindow(o.window)
	if err != nil {
		return nil, err
	}
	return &Guard{rules: append(Rules{}, rules...), win: w, minSamples: o.minSamples, tripped: make(chan struct{})}, nil
}

// Rules returns the guard's rules.
func (g *Guard) Rules() Rules { return append(Rules{}, g.rules...) }

// Window returns the guard's window, whose Stats the live display may show.
func (g *Guard) Window() *Window { return g.win }

// Observe records a finished request.
func (g *Guard) Observe(o Observation) { g.win.Add(o) }

// Backlog reports the lateness of the oldest due but unsent request.
func (g *Guard) Backlog(at time.Time, lag time.Duration) { g.win.Backlog(at, lag) }

// Check evaluates the rules over the window ending at now. After the first
// trip it returns that trip every time.
func (g *Guard) Check(now time.Time) (Trip, bool) {
	g.mu.Lock()
	if g.trip != nil {
		t := *g.trip
		g.mu.Unlock()
		return t, true
	}
	if g.start.IsZero() {
		g.start = now
	}
	started := g.start
	g.mu.Unlock()
	if len(g.rules) == 0 {
		return Trip{}, false
	}
	st := g.win.Stats(now)
	for _, r := range g.rules {
		v, ok := g.measure(r, st, now.Sub(started))
		if !ok || !r.Op.holds(v, r.Threshold) {
			continue
		}
		t := Trip{Rule: r, RuleText: r.String(), Value: v, Threshold: r.Threshold, At: now, Window: st.Window, Requests: st.Requests}
		t.ReasonText = t.Reason()
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.trip == nil {
			g.trip = &t
			close(g.tripped)
		}
		return *g.trip, true
	}
	return Trip{}, false
}

// measure returns the rule's metric from st, and false when there is not
// enough data to judge.
func (g *Guard) measure(r Rule, st Stats, running time.Duration) (float64, bool) {
	enough := st.Requests >= g.minSamples
	switch r.Metric {
	case ErrorRate:
		return st.ErrorRate, enough
	case Status5xxRate:
		return st.Status5xxRate, enough
	case P50:
		return st.P50.Seconds(), enough
	case P90:
		return st.P90.Seconds(), enough
	case P95:
		return st.P95.Seconds(), enough
	case P99:
		return st.P99.Seconds(), enough
	case Max:
		return st.Max.Seconds(), enough
	case Lag:
		// A backlog needs no sample: nothing may be completing at all.
		return st.Lag.Seconds(), enough || st.Lag > 0
	case Timeouts:
		if r.Percent {
			return st.TimeoutRate, enough
		}
		return float64(st.Timeouts), true
	case RPS:
		return st.RPS, running >= st.Window
	}
	return 0, false
}

// Tripped is closed when the guard trips.
func (g *Guard) Tripped() <-chan struct{} { return g.tripped }

// Trip returns the trip, if the guard has tripped.
func (g *Guard) Trip() (Trip, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.trip == nil {
		return Trip{}, false
	}
	return *g.trip, true
}

// Watch calls Check every interval until ctx ends or the guard trips, and
// then calls onTrip once with the trip (onTrip may be nil).
func (g *Guard) Watch(ctx context.Context, every time.Duration, onTrip func(Trip)) {
	if len(g.rules) == 0 {
		return
	}
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			if t, ok := g.Check(now); ok {
				if onTrip != nil {
					onTrip(t)
				}
				return
			}
		}
	}
}

// ErrInterrupted is the cause of a stop that SIGINT (or SIGTERM) began.
var ErrInterrupted = errors.New("interrupted: stopped issuing, draining requests in flight (interrupt again to stop at once)")

// ErrInterruptedTwice is the cause when a second SIGINT abandoned the
// requests in flight.
var ErrInterruptedTwice = errors.New("interrupted twice: requests in flight abandoned")

// ErrDrainTimeout is the cause when requests were still in flight at the
// end of --drain-timeout and were abandoned.
var ErrDrainTimeout = errors.New("drain timeout: requests still in flight were abandoned; raise --drain-timeout to wait longer")

// ErrFinished is the cause given to contexts when a run ends normally.
var ErrFinished = errors.New("replay finished")

// EnvValue formats a float for the on-abort environment.
func envValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
