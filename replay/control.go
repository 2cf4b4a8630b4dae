package replay

import (
	"errors"
	"time"

	"github.com/reprise-tool/reprise/replay/compare"
	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
)

// This file holds the live controls of a run (issue 7): the scale ramp,
// the session cap, the guards with their orderly stop, and the live
// display. Each is an option; without them Run behaves as before.

// DefaultGuardEvery is how often the guards are checked.
const DefaultGuardEvery = 250 * time.Millisecond

// WithScaleRamp raises the number of clones over wall time (--ramp
// scale=1:2m,scale=3). The run's scale is the ramp's highest stage; clone
// k of a session takes part only if the session's first request is due at
// or after the ramp's ActiveFrom(k), so raising the scale adds whole
// sessions rather than cutting sessions in the middle. Replaces WithScale.
func WithScaleRamp(r *ramp.Ramp) Option {
	return func(o *options) error {
		if r == nil || r.Kind() != ramp.KindScale {
			return errors.New("scale ramp: want a ramp of scale stages, e.g. scale=1:2m,scale=3")
		}
		top := 1.0
		for _, s := range r.Stages() {
			top = max(top, s.Value)
		}
		o.scaleRamp, o.scale = r, int(top)
		return nil
	}
}

// WithMaxSessions caps the session clones with work in progress at once
// (--max-sessions): a session takes a slot when one of its requests is
// dispatched while none of its others is, and gives it back when its last
// outstanding request completes. A request whose session finds no slot
// waits, and the schedule waits with it: the delay shows as lag. 0 means
// no cap.
func WithMaxSessions(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return errors.New("max sessions must not be negative (0 means no cap)")
		}
		o.maxSessions = n
		return nil
	}
}

// WithGuard stops the run when g trips: g is fed every finished request
// and checked every DefaultGuardEvery. The run then stops issuing at once,
// lets in-flight requests finish within the drain (WithDrainTimeout),
// marks the report's Abort and returns a *guard.AbortError.
func WithGuard(g *guard.Guard) Option {
	return func(o *options) error {
		if g == nil {
			return errors.New("guard is nil")
		}
		o.guard = g
		return nil
	}
}

// WithDrainTimeout sets how long requests in flight may finish once the
// run stops early in order (a guard, Interrupt, Stop); after it they are
// abandoned. Cancelling Run's context aborts them at once whatever the
// drain; under a drain or a guard that is reported as an interruption.
func WithDrainTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("drain timeout must not be negative")
		}
		o.drain, o.drainSet = d, true
		return nil
	}
}

// WithStages places the ramp's stages in the report (and so on the HTML
// page); a dry run's plan gives them.
func WithStages(stages []ramp.StagePlan) Option {
	return func(o *options) error {
		o.stages = stages
		return nil
	}
}

// WithRate caps the whole run at rt requests per second (--rate) with one
// limiter shared by every request, never one per worker; the wait shows
// as lag and in the report's Limits. The zero Rate is no cap.
func WithRate(rt ramp.Rate) Option {
	return func(o *options) error {
		if th := ramp.NewThrottle(rt); th != nil {
			o.limiter, o.ratePerSecond = th, rt.PerSecond
		}
		return nil
	}
}

// WithCompare compares every live response with the recorded one (status,
// chosen headers, the body field by field with noise discounted; see
// package replay/compare) and puts the differences in the report's
// Compare. A value the target issued in place of the recorded one (a
// token, an order id: what correlation maps) is not a difference. Off by
// default: it costs a JSON parse of both bodies per request.
func WithCompare(c *compare.Comparer) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("comparer is nil")
		}
		o.compare = c
		return nil
	}
}

// compareLive compares a live response with the recorded one, after its
// live values were learned.
func (r *Replayer) compareLive(it *item, ss *sessState, live *session.Response) {
	c := r.o.compare
	if c == nil || live == nil {
		return
	}
	c.Observe(it.route, c.Diff(&it.ex.Response, live, equivalent(ss.table)))
}

// equivalent says whether the live value s is what the session's table
// maps the recorded value p to.
func equivalent(t *correlate.Table) compare.Equivalent {
	return func(p, s string) bool {
		if p == "" || t.Len() == 0 {
			return false
		}
		req := session.Request{Header: session.Headers{{Name: "X-Reprise-Value", Value: p}}}
		out, rw := t.Rewrite(&req)
		return rw.Substituted > 0 && out.Header[0].Value == s
	}
}
