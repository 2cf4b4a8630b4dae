package replay

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay/compare"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/htmlreport"
	"github.com/reprise-tool/reprise/session"
)

// HTML converts the report to what the HTML page shows: the per-second
// series, the stages, the abort point, the summary and per-route tables.
// A saved run.json gives the same page as the run itself (reprise report
// run.json --html out.html).
func (r *Report) HTML() *htmlreport.Report {
	h := &htmlreport.Report{
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
		h.Stages = append(h.Stages, htmlreport.Stage{Name: s.Name, Start: s.Start, End: s.End})
	}
	if a := r.Abort; a != nil {
		h.Outcome = "stopped by a guard"
		if a.Kind == AbortInterrupt {
			h.Outcome = "interrupted"
		}
		h.Abort = &htmlreport.Abort{At: a.AtS, Rule: a.Rule, Reason: a.Reason}
	}
	q := r.Requests
	num := func(v uint64) string { return strconv.FormatUint(v, 10) }
	h.Summary = []htmlreport.Row{
		{Name: "Outcome", Value: h.Outcome, Bad: !r.Completed},
		{Name: "Speed / scale", Value: fmt.Sprintf("%s / %d", r.Speed, r.Scale)},
		{Name: "Duration", Value: ms(r.DurationMS)},
		{Name: "Requests scheduled / sent", Value: num(q.Scheduled) + " / " + num(q.Sent)},
		{Name: "Transport errors", Value: num(q.Errors) + " " + codes(r.Errors), Bad: q.Errors > 0},
		{Name: "Status codes", Value: codes(r.StatusCodes)},
		{Name: "Status differs from the recording", Value: num(r.StatusMismatch), Bad: r.StatusMismatch > 0},
		{Name: "Latency p50 / p99 (from due)", Value: ms(r.Latency.P50) + " / " + ms(r.Latency.P99)},
		{Name: "Lag p50 / p99 / max", Value: ms(r.Lag.P50) + " / " + ms(r.Lag.P99) + " / " + ms(r.Lag.Max)},
		{Name: "Sessions completed", Value: fmt.Sprintf("%d of %d", r.Sessions.Completed, r.Sessions.Total), Bad: r.Sessions.Completed != r.Sessions.Total},
	}
	if r.Guards != "" {
		h.Summary = append(h.Summary, htmlreport.Row{Name: "Guards", Value: r.Guards})
	}
	if l := r.Limits; l.RatePerSecond > 0 || l.MaxSessions > 0 {
		h.Summary = append(h.Summary, htmlreport.Row{Name: "Caps", Value: fmt.Sprintf("rate %g/s (%d waited), %d in flight, %d sessions (%d waited)",
			l.RatePerSecond, l.RateWaits.Waited, l.MaxInFlight, l.MaxSessions, l.SessionWaits.Waited)})
	}
	if c := r.Compare; c != nil {
		row := htmlreport.Row{Name: "Responses differing from the recording", Value: fmt.Sprintf("%d of %d compared", c.Differing, c.Compared), Bad: c.Differing > 0}
		h.Summary = append(h.Summary, row)
		for _, rt := range c.Routes {
			for _, f := range rt.Fields {
				h.Summary = append(h.Summary, htmlreport.Row{Name: "differs: " + rt.Route, Value: fieldText(f), Bad: true})
			}
		}
	}
	if r.Failure != "" {
		h.Summary = append(h.Summary, htmlreport.Row{Name: "Failure", Value: r.Failure, Bad: true})
	}
	for _, rt := range r.Routes {
		h.Routes = append(h.Routes, htmlreport.Route{Route: rt.Route, Requests: int(rt.Requests), Errors: int(rt.Errors),
			P50: rt.Latency.P50, P90: rt.Latency.P90, P99: rt.Latency.P99})
	}
	return h
}

// WriteHTML writes the report as one self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	return htmlreport.Render(w, r.HTML())
}

// Survey is what one pass over a recording tells before a replay: where
// its traffic went (for the original-host refusal) and its span.
type Survey struct {
	Origin      guard.Origin
	Exchanges   uint64
	First, Last int64 // earliest and latest request start, Unix ns
}

// Span is the time from the first request's start to the last one's.
func (s *Survey) Span() time.Duration { return time.Duration(s.Last - s.First) }

// SurveyRecording reads src to its end, collecting the server address and
// Host header of every exchange and the span of its requests. It is one
// pass over the recording, made before anything is sent, because the
// session index does not carry server addresses; the replay then opens
// the recording again.
func SurveyRecording(ctx context.Context, src session.Source) (*Survey, error) {
	s := &Survey{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ex, err := src.Next()
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the recording for its original host: %w", err)
		}
		s.Exchanges++
		s.Origin.AddExchange(ex)
		if t := ex.Timing.RequestStart; t != 0 {
			if s.First == 0 || t < s.First {
				s.First = t
			}
			if t > s.Last {
				s.Last = t
			}
		}
	}
}

// fieldText says how one path differed, e.g. "$.total (value) in 12 of
// the requests, 40%".
func fieldText(f compare.Field) string {
	return fmt.Sprintf("%s (%s) in %d requests, %.0f%%", f.Path, f.Kind, f.Count, 100*f.Rate)
}
