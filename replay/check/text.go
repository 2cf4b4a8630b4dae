package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the result as indented JSON with stable snake_case
// names.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the result for a person: the figures side by side, then
// one line per finding and the verdict.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	rec := r.Recording
	names := strings.Join(rec.Paths, ", ")
	if names != "" {
		names += ": "
	}
	fmt.Fprintf(&b, "recording  %s%d requests, %d sessions over %s (sessions %s)\n",
		names, rec.Load.Requests, rec.Load.Sessions, secs(rec.Load.DurationS), sessionsFrom(rec.SessionsFrom))
	if rec.Damaged > 0 {
		fmt.Fprintf(&b, "           %d damaged region(s) skipped: their exchanges are missing from every figure\n", rec.Damaged)
	}
	if p := r.Plan; p != nil {
		fmt.Fprintf(&b, "plan       %s", p.Plan)
		if p.FilteredOut > 0 {
			fmt.Fprintf(&b, " (filters leave out %d requests)", p.FilteredOut)
		}
		b.WriteString("\n\n")
		writePlanTable(&b, rec.Load, p.Predicted)
	}
	if run := r.Run; run != nil {
		writeRun(&b, rec.Load, run)
	}
	b.WriteString("\n")
	for _, f := range r.Findings {
		b.WriteString(f.String())
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "verdict: %s\n", r.Verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

func sessionsFrom(s string) string {
	switch s {
	case "recomputed":
		return "recomputed from the exchanges"
	case "connections":
		return "one per connection: asked for, or none recorded"
	}
	return "from the recording"
}

func writePlanTable(b *strings.Builder, rec, pred Profile) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	row := func(name, a, c string) { fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, a, c) }
	itoa := strconv.Itoa
	row("", "recording", "replay (predicted)")
	row("duration", secs(rec.DurationS), secs(pred.DurationS))
	row("requests", itoa(rec.Requests), itoa(pred.Requests))
	row("peak requests/s", itoa(rec.PeakRPS), itoa(pred.PeakRPS))
	row("peak in flight", itoa(rec.PeakConcurrency), itoa(pred.PeakConcurrency))
	row("sessions at once", itoa(rec.PeakSessions), itoa(pred.PeakSessions))
	row("refreshes", itoa(rec.Refreshes), itoa(pred.Refreshes))
	row("refreshes/s at peak", itoa(rec.PeakRefreshesPerSecond), itoa(pred.PeakRefreshesPerSecond))
	row("refreshes at peak", peakShares(rec.RefreshPeak.Share, rec.RefreshPeak.RequestShare), peakShares(pred.RefreshPeak.Share, pred.RefreshPeak.RequestShare))
	if rec.TokenLifetimeS > 0 {
		row("token lifetime", secs(rec.TokenLifetimeS), secs(rec.TokenLifetimeS)+" (server time)")
	} else {
		row("token lifetime", "unknown", "unknown")
	}
	if rec.RefreshIntervalS > 0 {
		row("refreshed after", secs(rec.RefreshIntervalS)+" ("+pct(rec.TokenUse)+")", secs(pred.RefreshIntervalS)+" ("+pct(pred.TokenUse)+")")
	}
	row("expired-token requests", itoa(rec.ExpiredTokenRequests), itoa(pred.ExpiredTokenRequests))
	row("lag p99 / max", "-", secs(pred.Lag.P99/1000)+" / "+secs(pred.Lag.Max/1000))
	row("order waits", "-", fmt.Sprintf("%d (p99 %s)", pred.OrderWaits, secs(pred.OrderWait.P99/1000)))
	tw.Flush()
}

func writeRun(b *strings.Builder, rec Profile, r *RunResult) {
	fmt.Fprintf(b, "run        speed %s, scale %d: %d of %d requests sent in %s", r.Speed, r.Scale, r.Sent, r.Expected, secs(r.DurationS))
	if r.ExpectedS > 0 {
		fmt.Fprintf(b, " (planned %s)", secs(r.ExpectedS))
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	row := func(name, v string) { fmt.Fprintf(tw, "  %s\t%s\n", name, v) }
	nm := "not measured"
	f := func(p *float64, format string) string {
		if p == nil {
			return nm
		}
		return fmt.Sprintf(format, *p)
	}
	share := func(p *float64) string {
		if p == nil {
			return nm
		}
		return pct(*p)
	}
	ms := func(p *float64) string {
		if p == nil {
			return nm
		}
		return secs(*p / 1000)
	}
	mix := f(r.RouteDistance, "%.2f")
	if r.RouteDistance != nil && *r.RouteDistance > 0 && r.WorstRoute != "" {
		mix += fmt.Sprintf(" (most changed: %s, %s -> %s)", r.WorstRoute, pct(r.WorstRouteRecordedShare), pct(r.WorstRouteRunShare))
	}
	row("route mix distance", mix)
	ks := func(name string, p *float64) string {
		if p == nil {
			return nm
		}
		v := fmt.Sprintf("%.2f (chance: %.2f", *p, r.KSNoise[name])
		if fl := r.KSFloorMS[name]; fl > 0 {
			v += "; under " + secs(fl/1000) + " counts as equal"
		}
		return v + ")"
	}
	row("inter-arrival KS", ks("inter_arrival", r.InterArrivalKS))
	row("think time KS", ks("think_time", r.ThinkTimeKS))
	row("session length KS", ks("session_length", r.SessionLengthKS))
	row("lag p99 / max", ms(r.LagP99MS)+" / "+ms(r.LagMaxMS))
	waits := nm
	if r.OrderWaits != nil {
		waits = fmt.Sprintf("%d (p99 %s)", *r.OrderWaits, ms(r.OrderWaitP99MS))
	}
	row("order waits", waits)
	row("error rate", share(r.ErrorRate))
	row("status mismatch", share(r.StatusMismatchRate))
	row("sessions not completed", share(r.FailedSessions))
	peak := nm
	if r.RefreshPeakShare != nil && r.RefreshPeakRequestShare != nil {
		peak = peakShares(*r.RefreshPeakShare, *r.RefreshPeakRequestShare)
	}
	row("refreshes at peak", peak+" (recording: "+peakShares(rec.RefreshPeak.Share, rec.RefreshPeak.RequestShare)+")")
	if r.RefreshCrowding != nil && r.RefreshPeakNoise != nil {
		row("crowding beyond traffic", fmt.Sprintf("%+.0f points (chance: %.0f)", 100**r.RefreshCrowding, 100**r.RefreshPeakNoise))
	}
	tw.Flush()
	// One line per reason, with the figures it left out.
	var whys []string
	byWhy := map[string][]string{}
	for _, name := range r.NotMeasured {
		why := r.NotMeasuredWhy[name]
		if _, ok := byWhy[why]; !ok {
			whys = append(whys, why)
		}
		byWhy[why] = append(byWhy[why], name)
	}
	if len(whys) > 0 {
		b.WriteString("\n")
	}
	for _, why := range whys {
		fmt.Fprintf(b, "not measured: %s", strings.Join(byWhy[why], ", "))
		if why != "" {
			fmt.Fprintf(b, " (%s)", why)
		}
		b.WriteString("\n")
	}
}

// peakShares says how much of the refreshes, and of the requests beside
// them, fell in the busiest tenth of seconds.
func peakShares(refreshes, requests float64) string {
	return pct(refreshes) + " with " + pct(requests) + " of requests"
}
