package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/corrplan"
	"github.com/reprise-tool/reprise/session/http2"
	"github.com/reprise-tool/reprise/session/summary"
)

// inspectPlan is inspect's correlation section: the recording's plan
// (the one its metadata holds, or computed in one more pass for a
// recording made without one, unless quick) and the unreplaced values,
// which a replay sends stale.
type inspectPlan struct {
	Computed bool                     `json:"computed"`
	Plan     *session.CorrelationPlan `json:"plan"`
}

// correlationPlan reads or computes the plan of the recording at paths;
// nil when quick and the recording holds none.
func correlationPlan(ctx context.Context, paths []string, quick bool) (*inspectPlan, error) {
	rd, err := session.Open(paths...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	if p := corrplan.Stored(rd); p != nil {
		return &inspectPlan{Plan: p}, nil
	}
	if quick {
		return nil, nil
	}
	p, err := corrplan.Compute(ctx, rd)
	if err != nil {
		return nil, fmt.Errorf("computing the correlation plan: %w", err)
	}
	return &inspectPlan{Plan: p, Computed: true}, nil
}

// maxPlanLines bounds the rules and the unreplaced places listed.
const maxPlanLines = 10

// writeText writes the section for a person.
func (ip *inspectPlan) writeText(w io.Writer) error {
	if ip == nil {
		return nil
	}
	var b strings.Builder
	p := ip.Plan
	how := "stored in the recording"
	if ip.Computed {
		how = "computed from the exchanges (the recording holds none)"
	}
	switch {
	case p.All:
		fmt.Fprintf(&b, "\ncorrelation plan, %s: too many places to tell apart; a replay learns every distinctive value\n", how)
	default:
		fmt.Fprintf(&b, "\ncorrelation plan, %s: %d places whose values later requests carry back\n", how, len(p.Rules))
		for i, r := range p.Rules {
			if i == maxPlanLines {
				fmt.Fprintf(&b, "  and %d more\n", len(p.Rules)-i)
				break
			}
			fmt.Fprintf(&b, "  %-40s %s\n", r.Route, r.Field)
		}
	}
	if len(p.Unreplaced) == 0 {
		b.WriteString("unreplaced values: none (every credential or id a request carries was issued by a recorded response)\n")
	} else {
		fmt.Fprintf(&b, "unreplaced values: requests carry these, no recorded response issued them; a replay sends them as recorded (stale)\n")
		for i, u := range p.Unreplaced {
			if i == maxPlanLines {
				fmt.Fprintf(&b, "  and %d more places\n", len(p.Unreplaced)-i)
				break
			}
			fmt.Fprintf(&b, "  %-40s %-28s %6d requests, e.g. %s\n", u.Route, u.Place, u.Requests, u.Example)
		}
	}
	if p.Forgotten > 0 {
		fmt.Fprintf(&b, "  (%d issued values were let go of by the plan's memory bound; a value carried after that counts as unreplaced)\n", p.Forgotten)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeInspect writes the summary, the HTTP/2 section when there is one
// and the correlation section, as text or as one JSON document (the
// sections under "http2" and "correlation"). A plan that cannot be read
// (a damaged recording) is reported, not fatal: the summary says what was
// recovered.
func writeInspect(ctx context.Context, out, errw io.Writer, s *summary.Summary, h2 *http2.Summary, o *inspectOptions) error {
	var ip *inspectPlan
	if !importable(o.paths) { // a HAR or .gor file has no metadata; its plan is made when imported
		var err error
		if ip, err = correlationPlan(ctx, o.paths, o.quick); err != nil {
			fmt.Fprintf(errw, "reprise: %v\n", err)
		}
	}
	if o.asJSON {
		return writeJSON(out, struct {
			*summary.Summary
			HTTP2       *http2.Summary `json:"http2,omitempty"`
			Correlation *inspectPlan   `json:"correlation,omitempty"`
		}{s, h2, ip})
	}
	if err := s.WriteText(out); err != nil {
		return err
	}
	if h2 != nil {
		if err := h2.WriteText(out); err != nil {
			return err
		}
	}
	return ip.writeText(out)
}
