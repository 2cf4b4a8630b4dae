package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/reprise-tool/reprise/replay/live"
)

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

// liveLoop fills the live display and the metrics' gauges every second
// until done is closed, then shows the final state.
func (r *Replayer) liveLoop(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			if r.o.live != nil {
				r.o.live.Finish(r.liveSnapshot(time.Now()))
			}
			return
		case now := <-t.C:
			s := r.liveSnapshot(now)
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
			if r.o.live != nil {
				r.o.live.Update(s)
			}
			if m := r.o.metrics; m != nil {
				m.SetInFlight(s.InFlight)
				m.SetStage(s.StageIndex, s.Stage, s.Speed)
				m.SetBacklog(s.Lag)
			}
		}
	}
}

// liveSnapshot is the state shown each second. Percentiles and lag are
// the guard window's (the last --abort-window) when a guard runs, the
// whole run's otherwise.
func (r *Replayer) liveSnapshot(now time.Time) live.Snapshot {
	s := r.Snapshot()
	el := now.Sub(time.Unix(0, r.start.Load()))
	ls := live.Snapshot{
		Elapsed: el, Total: r.o.liveTotal, Speed: r.o.pacer.Speed(el),
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
	return ls
}
