package replay

import (
	"errors"
	"time"
)

// The engine shows nothing itself: it emits events, and displays
// subscribe. Observers get every request's result; Monitors get the run's
// state once a second and once at its end. The progress bar and the
// Prometheus metrics of package replay/live are both, wired by the CLI;
// the engine does not import them.

// Observer sees every request's result. Results are delivered in
// batches, as each worker records its figures (up to 32 at a time, and
// always before the worker waits), so Observe is called from many
// goroutines at once and must not block for long; the Result must not be
// retained after Observe returns.
type Observer interface {
	Observe(*Result)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(*Result)

// Observe implements Observer.
func (f ObserverFunc) Observe(r *Result) { f(r) }

// Status is the state of a run at one moment, given to Monitors.
type Status struct {
	// Elapsed is the wall time since the replay started; Total the
	// planned length (WithPlannedLength; 0 when unknown, as under
	// --speed max).
	Elapsed, Total time.Duration
	// Stage names the ramp stage in force ("2x:2m"), with its position
	// from 1 and the number of stages; empty without a ramp.
	Stage       string
	StageIndex  int
	Stages      int
	Speed       float64 // the speed multiplier in force, 0 under Max
	Sent        uint64  // requests sent so far
	Completed   uint64  // requests finished so far (with or without a response)
	Errors      uint64  // finished without a response, or with a 5xx
	InFlight    int     // requests sent and not finished
	RPS         float64 // requests sent per second, recently
	IntendedRPS float64 // requests due per second by the schedule, recently
	// P50 and P99 are latencies from the due time, and Lag how late
	// requests are being sent: over the guard's window when a guard
	// runs, over the whole run otherwise. A cap that holds the schedule
	// back shows in Lag at once, before the late requests are sent.
	P50, P99 time.Duration
	Lag      time.Duration
	Stopping string // why the replay is stopping; "" while it runs
	// Aborted is the rule that stopped the run early (a guard's rule
	// text, or "interrupt"); "" otherwise.
	Aborted string
}

// Monitor sees the state of a run: Update once a second, and at once
// when the run starts stopping; Finish once, with the final state, when
// Run is about to return. Both are called from one goroutine.
type Monitor interface {
	Update(Status)
	Finish(Status)
}

// WithMonitor adds a monitor of the run's state (the live display, the
// metrics' gauges).
func WithMonitor(m Monitor) Option {
	return func(o *options) error {
		if m == nil {
			return errors.New("monitor is nil")
		}
		o.monitors = append(o.monitors, m)
		return nil
	}
}

// WithPlannedLength gives the run's planned length, shown as
// Status.Total (0: unknown).
func WithPlannedLength(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("planned length must not be negative")
		}
		o.planned = d
		return nil
	}
}
