package replay

import (
	"errors"

	"github.com/reprise-tool/reprise/replay/guard"
)

// Stop stops issuing new requests; requests in flight finish within their
// timeout and Run then returns its report, whose Stopped field holds
// reason. Only the first call counts.
func (r *Replayer) Stop(reason string) {
	r.stopOnce.Do(func() {
		if reason == "" {
			reason = "stopped"
		}
		r.stopMu.Lock()
		r.stopWhy = reason
		r.stopMu.Unlock()
		close(r.stopCh)
		if s := r.stopper.Load(); s != nil {
			s.Stop(errors.New(reason)) // starts the drain
		}
	})
}

// tripped stops the run for a guard's trip.
func (r *Replayer) tripped(t guard.Trip) {
	if r.stopped() {
		// Already stopping (an interrupt, the end of --max-duration): a
		// rule that holds during the drain is not what stopped the run.
		return
	}
	r.tripMu.Lock()
	if r.trip == nil {
		r.trip = &t
	}
	r.tripMu.Unlock()
	if r.o.metrics != nil {
		r.o.metrics.SetAborted(t.RuleText)
	}
	if s := r.stopper.Load(); s != nil {
		s.Stop(&guard.AbortError{Trip: t})
	}
	r.Stop("guard " + t.RuleText + ": " + t.Reason())
}

// InterruptedError is returned by Run when SIGINT or SIGTERM (WithSignals,
// or the caller's context ending under WithDrainTimeout) stopped it. The
// report is complete up to the stop. Its exit code is 130, the shell's
// for an interrupted command.
type InterruptedError struct{ Cause error }

func (e *InterruptedError) Error() string {
	return "replay interrupted (" + e.Cause.Error() + "): no new request was sent after it; the report covers the run up to the stop"
}
func (e *InterruptedError) Unwrap() error { return e.Cause }

func (r *Replayer) stopReason() string {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	return r.stopWhy
}

func (r *Replayer) stopped() bool {
	select {
	case <-r.stopCh:
		return true
	default:
		return false
	}
}
