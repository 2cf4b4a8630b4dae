package htmlreport

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/compare"
)

// FromReplay converts a replay's report to what the page shows: the per-second
// series, the stages, the abort point, the summary and per-route tables.
// A saved run.json gives the same page as the run itself (reprise report
// run.json --html out.html).
func FromReplay(r *replay.Report) *Report {
	h := &Report{
		Title:   "reprise replay against " + r.Target,
		Target:  r.Target,
		Started: r.Start,
		Outcome: "completed",
		Series:  r.Series,
	}
	if rec := r.Labels["recording"]; rec != "" {
		h.Recording = strings.Split(rec, ",")
	}
	if !r.Completed {
		h.Outcome = "did not complete"
	}
	for _, s := range r.Stages {
		h.Stages = append(h.Stages, Stage{Name: s.Name, Start: s.Start, End: s.End})
	}
	if a := r.Abort; a != nil {
		h.Outcome = "stopped by a guard"
		if a.Kind == replay.AbortInterrupt {
			h.Outcome = "interrupted"
		}
		h.Abort = &Abort{At: a.AtS, Rule: a.Rule, Reason: a.Reason}
	}
	q := r.Requests
	num := func(v uint64) string { return strconv.FormatUint(v, 10) }
	h.Summary = []Row{
		{Name: "Outcome", Value: h.Outcome, Bad: !r.Completed},
		{Name: "Speed / scale", Value: fmt.Sprintf("%s / %d", r.Speed, r.Scale)},
		{Name: "Duration", Value: replay.FormatMS(r.DurationMS)},
		{Name: "Requests scheduled / sent", Value: num(q.Scheduled) + " / " + num(q.Sent)},
		{Name: "Transport errors", Value: num(q.Errors) + " " + replay.FormatCounts(r.Errors), Bad: q.Errors > 0},
		{Name: "Status codes", Value: replay.FormatCounts(r.StatusCodes)},
		{Name: "Status differs from the recording", Value: num(r.StatusMismatch), Bad: r.StatusMismatch > 0},
		{Name: "Latency p50 / p99 (from due)", Value: replay.FormatMS(r.Latency.P50) + " / " + replay.FormatMS(r.Latency.P99)},
		{Name: "Lag p50 / p99 / max", Value: replay.FormatMS(r.Lag.P50) + " / " + replay.FormatMS(r.Lag.P99) + " / " + replay.FormatMS(r.Lag.Max)},
		{Name: "Sessions completed", Value: fmt.Sprintf("%d of %d", r.Sessions.Completed, r.Sessions.Total), Bad: r.Sessions.Completed != r.Sessions.Total},
	}
	if r.Guards != "" {
		h.Summary = append(h.Summary, Row{Name: "Guards", Value: r.Guards})
	}
	if l := r.Limits; l.RatePerSecond > 0 || l.MaxSessions > 0 {
		h.Summary = append(h.Summary, Row{Name: "Caps", Value: fmt.Sprintf("rate %g/s (%d waited), %d in flight, %d sessions (%d waited)",
			l.RatePerSecond, l.RateWaits.Waited, l.MaxInFlight, l.MaxSessions, l.SessionWaits.Waited)})
	}
	if c := r.Compare; c != nil {
		row := Row{Name: "Responses differing from the recording", Value: fmt.Sprintf("%d of %d compared", c.Differing, c.Compared), Bad: c.Differing > 0}
		h.Summary = append(h.Summary, row)
		for _, rt := range c.Routes {
			for _, f := range rt.Fields {
				h.Summary = append(h.Summary, Row{Name: "differs: " + rt.Route, Value: fieldText(f), Bad: true})
			}
		}
	}
	if r.Failure != "" {
		h.Summary = append(h.Summary, Row{Name: "Failure", Value: r.Failure, Bad: true})
	}
	for _, rt := range r.Routes {
		h.Routes = append(h.Routes, Route{Route: rt.Route, Requests: int(rt.Requests), Errors: int(rt.Errors),
			P50: rt.Latency.P50, P90: rt.Latency.P90, P99: rt.Latency.P99})
	}
	return h
}

// WriteReplay writes a replay's report as one self-contained HTML page
// (what --html writes).
func WriteReplay(w io.Writer, r *replay.Report) error {
	return Render(w, FromReplay(r))
}

// fieldText says how one path differed, e.g. "$.total (value) in 12 of
// the requests, 40%".
func fieldText(f compare.Field) string {
	return fmt.Sprintf("%s (%s) in %d requests, %.0f%%", f.Path, f.Kind, f.Count, 100*f.Rate)
}
