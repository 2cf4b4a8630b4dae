package live

import "github.com/reprise-tool/reprise/replay"

// Display subscribes a progress display and metrics to a replay: give it
// to replay.WithMonitor for the state each second, and to
// replay.WithObserver when Metrics is set, for every result. Either field
// may be nil.
type Display struct {
	Progress *Progress
	Metrics  *Metrics
}

var (
	_ replay.Observer = (*Display)(nil)
	_ replay.Monitor  = (*Display)(nil)
)

// Observe implements replay.Observer: a request that was sent goes to
// the metrics.
func (d *Display) Observe(r *replay.Result) {
	if d.Metrics == nil || r.Sent.IsZero() {
		return
	}
	d.Metrics.Observe(NewRequest(r.Route, r.Due, r.Sent, r.Done, r.Status, r.ErrKind))
}

// Update implements replay.Monitor: the state goes to the display and the
// metrics' gauges.
func (d *Display) Update(s replay.Status) {
	if d.Progress != nil {
		d.Progress.Update(Snapshot(s))
	}
	if m := d.Metrics; m != nil {
		m.SetInFlight(s.InFlight)
		m.SetStage(s.StageIndex, s.Stage, s.Speed)
		m.SetBacklog(s.Lag)
		if s.Aborted != "" {
			m.SetAborted(s.Aborted)
		}
	}
}

// Finish implements replay.Monitor: the display shows the final state and
// ends.
func (d *Display) Finish(s replay.Status) {
	if d.Progress != nil {
		d.Progress.Finish(Snapshot(s))
	}
	if m := d.Metrics; m != nil && s.Aborted != "" {
		m.SetAborted(s.Aborted)
	}
}
