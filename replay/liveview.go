package replay

import (
	"context"
	"fmt"
	"time"
)

// progressLoop writes the one-line Snapshot of WithProgress every
// interval, for a caller that wants a log line and no Monitor.
func (r *Replayer) progressLoop(ctx context.Context) {
	t := time.NewTicker(r.o.progressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.stopCh:
			return
		case <-t.C:
			fmt.Fprintln(r.o.progress, r.Snapshot())
		}
	}
}

// liveLoop gives the monitors the run's state every second, and at once
// when the run starts stopping, until done is closed; then the final
// state. It also tells the guard of a backlog at the caps.
func (r *Replayer) liveLoop(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	stopping := r.stopCh
	for {
		select {
		case <-done:
			s := r.status(time.Now())
			for _, m := range r.o.monitors {
				m.Finish(s)
			}
			return
		case <-stopping:
			stopping = nil // once
			r.update(time.Now())
		case now := <-t.C:
			r.update(now)
		}
	}
}

// update gives the monitors the state at now.
func (r *Replayer) update(now time.Time) {
	s := r.status(now)
	if bd := r.blockedDue.Load(); bd != 0 && !r.stopped() {
		// A cap that holds the schedule back shows as lag at
		// once, before the late requests are sent.
		if b := now.Sub(time.Unix(0, bd)); b > 0 {
			s.Lag = max(s.Lag, b)
			if g := r.o.guard; g != nil {
				g.Backlog(now, b)
			}
		}
	}
	for _, m := range r.o.monitors {
		m.Update(s)
	}
}

// status is the state at now. Percentiles and lag are the guard window's
// (the last --abort-window) when a guard runs, the whole run's otherwise.
func (r *Replayer) status(now time.Time) Status {
	s := r.Snapshot()
	el := now.Sub(time.Unix(0, r.start.Load()))
	ls := Status{
		Elapsed: el, Total: r.o.planned, Speed: r.o.pacer.Speed(el),
		Sent: s.Sent, InFlight: int(s.InFlight), Errors: s.Errors,
		RPS: float64(r.sends.recent(now)), P99: s.LatP99, Lag: s.LagP99,
		IntendedRPS: float64(r.dues.recent(now)), // none under --speed max, where due is when sent
	}
	if ls.Completed = s.Sent; s.InFlight > 0 && uint64(s.InFlight) <= s.Sent {
		ls.Completed = s.Sent - uint64(s.InFlight)
	}
	if sr := r.o.speedRamp; sr != nil {
		i, name := sr.StageAt(el)
		ls.StageIndex, ls.Stage, ls.Stages = i+1, name, len(r.o.stages)
		if ls.Stages == 0 {
			ls.Stages = len(sr.Stages())
		}
	} else if sr := r.o.scaleRamp; sr != nil {
		i, name := sr.StageAt(el)
		ls.StageIndex, ls.Stage, ls.Stages = i+1, name, len(sr.Stages())
	}
	if g := r.o.guard; g != nil {
		w := g.Window().Stats(now)
		ls.P50, ls.P99, ls.Lag = w.P50, w.P99, w.Lag
	}
	if r.stopped() {
		ls.Stopping = r.stopReason()
	}
	r.stop.mu.Lock()
	ls.Aborted = r.stop.aborted
	r.stop.mu.Unlock()
	return ls
}
