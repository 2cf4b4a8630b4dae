package replay

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/replay/guard"
)

// A run ends early in one of three ways, as http.Server's Close and
// Shutdown differ: Stop and Interrupt are orderly (no new request is
// sent, those in flight finish within the drain), a guard's trip is an
// orderly stop too, and cancelling Run's context aborts, the requests in
// flight with it. The library registers no signal: the CLI catches SIGINT
// and SIGTERM and calls Interrupt, then cancels on the second.

// stopState is how and why the run stopped; one lock covers it.
type stopState struct {
	once sync.Once
	ch   chan struct{} // closed by the first Stop
	// stopper carries the drain while Run runs with one (a guard, a
	// drain timeout); nil otherwise.
	stopper atomic.Pointer[guard.Stopper]

	mu      sync.Mutex
	why     string
	trip    *guard.Trip
	intr    *interruption
	aborted string // the rule that stopped the run, for the observers
}

// interruption is an Interrupt's cause and moment.
type interruption struct {
	cause error
	at    time.Time
}

// Stop stops issuing new requests; requests in flight finish within their
// timeout (or the drain, WithDrainTimeout) and Run then returns its
// report, whose Stopped field holds reason. Only the first call counts.
func (r *Replayer) Stop(reason string) {
	r.stop.once.Do(func() {
		if reason == "" {
			reason = "stopped"
		}
		r.stop.mu.Lock()
		r.stop.why = reason
		r.stop.mu.Unlock()
		close(r.stopCh)
		if s := r.stop.stopper.Load(); s != nil {
			s.Stop(errors.New(reason)) // starts the drain
		}
	})
}

// Interrupt stops the run in order as an interruption, what the CLI does
// on SIGINT or SIGTERM: no new request is sent, those in flight finish
// within the drain, the report's Abort says "interrupt" and Run returns an
// *InterruptedError. A nil cause is guard.ErrInterrupted. To abandon the
// requests in flight as well, cancel Run's context. Only the first call
// counts, and none after another stop.
func (r *Replayer) Interrupt(cause error) {
	if cause == nil {
		cause = guard.ErrInterrupted
	}
	if !r.noteInterrupt(cause) {
		return
	}
	if s := r.stop.stopper.Load(); s != nil {
		s.Stop(cause)
	}
	r.Stop(cause.Error())
}

// noteInterrupt records an interruption unless the run stopped already,
// and reports whether it did.
func (r *Replayer) noteInterrupt(cause error) bool {
	r.stop.mu.Lock()
	defer r.stop.mu.Unlock()
	if r.stop.intr != nil || r.stop.trip != nil || r.stopped() {
		return false
	}
	r.stop.intr = &interruption{cause: cause, at: time.Now()}
	r.stop.aborted = "interrupt"
	return true
}

// tripped stops the run for a guard's trip.
func (r *Replayer) tripped(t guard.Trip) {
	if r.stopped() {
		// Already stopping (an interrupt, the end of --max-duration): a
		// rule that holds during the drain is not what stopped the run.
		return
	}
	r.stop.mu.Lock()
	if r.stop.trip == nil {
		r.stop.trip = &t
		r.stop.aborted = t.RuleText
	}
	r.stop.mu.Unlock()
	if s := r.stop.stopper.Load(); s != nil {
		s.Stop(&guard.AbortError{Trip: t})
	}
	r.Stop("guard " + t.RuleText + ": " + t.Reason())
}

// InterruptedError is returned by Run when Interrupt (the CLI's SIGINT or
// SIGTERM), or the caller's context ending under WithDrainTimeout or a
// guard, stopped it. The report is complete up to the stop.
type InterruptedError struct{ Cause error }

func (e *InterruptedError) Error() string {
	return "replay interrupted (" + e.Cause.Error() + "): no new request was sent after it; the report covers the run up to the stop"
}
func (e *InterruptedError) Unwrap() error { return e.Cause }

func (r *Replayer) stopReason() string {
	r.stop.mu.Lock()
	defer r.stop.mu.Unlock()
	return r.stop.why
}

func (r *Replayer) stopped() bool {
	select {
	case <-r.stopCh:
		return true
	default:
		return false
	}
}

// startStopper makes the stopper that carries the drain, when the run
// has one (a drain timeout or a guard). The requests in flight then run on
// its InFlight context, which ends when the drain is over or ctx ends:
// cancelling ctx always aborts them. It returns the context for the
// requests and a function that releases the stopper.
func (r *Replayer) startStopper(ctx context.Context) (reqCtx context.Context, stopper *guard.Stopper, release func()) {
	if !r.o.drainSet && r.o.guard == nil {
		return ctx, nil, func() {}
	}
	drain := guard.DefaultDrain
	if r.o.drainSet {
		drain = r.o.drain
	}
	stopper = guard.NewStopper(context.WithoutCancel(ctx), drain)
	r.stop.stopper.Store(stopper)
	finished := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// The caller's context ended: an abort, reported as an
			// interruption (the CLI cancels on a second SIGINT).
			cause := context.Cause(ctx)
			if cause == context.Canceled {
				cause = guard.ErrInterrupted
			}
			r.noteInterrupt(cause)
			stopper.Kill(cause)
		case <-finished:
		}
	}()
	go func() {
		select {
		case <-stopper.Issue().Done():
			if cause := context.Cause(stopper.Issue()); cause != nil && !errors.Is(cause, guard.ErrFinished) {
				r.Stop(cause.Error())
			}
		case <-finished:
		}
	}()
	return stopper.InFlight(), stopper, func() {
		close(finished)
		stopper.Close()
	}
}

// abort fills the report's Abort from what stopped the run, and returns
// the error Run returns for it: a guard's *guard.AbortError or an
// *InterruptedError.
func (r *Replayer) abort(rep *Report, stopper *guard.Stopper, start time.Time) error {
	r.stop.mu.Lock()
	trip, intr := r.stop.trip, r.stop.intr
	r.stop.mu.Unlock()
	var err error
	switch {
	case trip != nil:
		rep.Abort = &Abort{
			Kind: AbortGuard, Rule: trip.RuleText, Reason: trip.Reason(), At: trip.At.UTC(), AtS: trip.At.Sub(start).Seconds(),
			Value: trip.Value, Threshold: trip.Threshold, WindowS: trip.Window.Seconds(), WindowRequests: trip.Requests,
		}
		err = &guard.AbortError{Trip: *trip}
	case intr != nil:
		rep.Abort = &Abort{Kind: AbortInterrupt, Rule: "interrupt", Reason: intr.cause.Error(), At: intr.at.UTC(), AtS: intr.at.Sub(start).Seconds()}
		err = &InterruptedError{Cause: intr.cause}
	}
	if rep.Abort != nil && stopper != nil {
		k := stopper.Killed()
		rep.Abort.Abandoned = k != nil && !errors.Is(k, guard.ErrFinished)
	}
	return err
}
