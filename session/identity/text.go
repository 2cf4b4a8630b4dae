package identity

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/reprise-tool/reprise/session"
)

// WriteText prints the report for a person to read at a glance. Token
// values never appear in it.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	from := ""
	if r.From != "" {
		from = " (timelines " + r.From + ")"
	}
	p("sessions            %d%s\n", r.Sessions, from)
	if len(r.Via) > 0 {
		p("  identified by     %s\n", countList(r.Via))
		p("  ended by          %s\n", countList(r.EndedBy))
	}
	p("exchanges           %d (%d in sessions, %d without an identity)\n", r.Exchanges, r.Attributed, r.Unattributed)
	if r.Start != 0 {
		p("span                %s\n", secs(float64(r.End-r.Start)/1e9))
	}
	p("session length      %s\n", distText(r.SessionLength, secs))
	p("requests/session    %s\n", distText(r.RequestsPerSession, count))
	p("think time          %s\n", distText(r.ThinkTime, func(v float64) string { return secs(v / 1e3) }))
	p("logins              %d   logouts %d   401s %d\n", r.Logins, r.Logouts, r.Rejected)
	rf := r.Refreshes
	p("refreshes           %d", rf.Total)
	if rf.Total > 0 {
		p(" (proactive %d = %.0f%%, reactive after a 401 or expiry %d = %.0f%%)", rf.Proactive, 100*rf.ProactiveShare, rf.Reactive, 100*rf.ReactiveShare)
	}
	p("\n")
	p("refreshes/session   %s\n", distText(r.RefreshesPerSession, count))
	p("lead before expiry  %s\n", distText(rf.Lead, secs))
	if pk := rf.Peak; pk.SpanSeconds > 0 {
		p("refreshes at peak   %d of %d = %.0f%% began in the busiest tenth of seconds (%d of %d s, >= %d req/s), which carry %.0f%% of requests\n",
			pk.Refreshes, rf.Total, 100*pk.Share, pk.Seconds, pk.SpanSeconds, pk.MinRPS, 100*pk.RequestShare)
	}
	if tk := r.Tracking; tk != nil && tk.LateTokens > 0 {
		p("late tokens         %d used before the response that issued them was seen (input out of order beyond the window)\n", tk.LateTokens)
	}
	if r.Damaged > 0 {
		p("damaged regions     %d skipped: their exchanges are missing from these figures\n", r.Damaged)
	}
	if len(r.Top) > 0 {
		p("\nsessions by requests (top %d of %d; --session KEY shows one)\n", len(r.Top), r.Sessions)
		tw := tabwriter.NewWriter(ew, 2, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "KEY\tVIA\tSUBJECT\tSTART\tLENGTH\tREQS\tLOGINS\tREFRESHES\tPRO/RE\t401s\tENDED\t")
		for _, s := range r.Top {
			fmt.Fprintf(tw, "%s\t%s\t%s\t+%s\t%s\t%d\t%d\t%d\t%d/%d\t%d\t%s\t\n", s.Key, s.Via, short(s.Subject, 18),
				secs(s.Offset), secs(s.Length), s.Requests, s.Logins, s.Refreshes, s.Proactive, s.Reactive, s.Rejected, orDash(s.EndedBy))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return ew.err
}

// WriteText prints one session's timeline: each request with its offset
// from the session's start, status and latency, and token events inline
// (values shortened).
func (d *Detail) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("session %s", d.Key)
	if tl := d.Timeline; tl != nil {
		p("  via %s", orDash(tl.Via))
		if tl.Subject != "" {
			p("  subject %s", tl.Subject)
		}
		p("  start %s  length %s\n", time.Unix(0, tl.Start).UTC().Format("2006-01-02T15:04:05.000Z"), secs(float64(tl.End-tl.Start)/1e9))
		p("requests %d  logins %d  refreshes %d (%d proactive, %d reactive)  401s %d  logouts %d  ended by %s\n",
			tl.Exchanges, tl.Logins, tl.Refreshes, tl.Proactive, tl.Reactive, tl.Rejected, tl.Logouts, orDash(tl.EndedBy))
	} else {
		p("\n")
	}
	p("\n")
	tw := 20
	for _, r := range d.Requests {
		tw = max(tw, min(len(r.Target), 60))
	}
	p("%-10s %-7s %-*s %6s %9s\n", "OFFSET", "METHOD", tw, "TARGET", "STATUS", "LATENCY")
	for _, r := range d.Requests {
		status := fmt.Sprint(r.Status)
		if r.Status == 0 {
			status = "-"
		}
		p("%-10s %-7s %-*s %6s %9s\n", fmt.Sprintf("+%.3fs", r.Offset/1e3), r.Method, tw, short(r.Target, 60), status, secs(r.Latency/1e3))
		for _, ev := range r.Events {
			p("%10s -> %s", "", ev.Kind)
			if ev.Name != "" {
				p(" %s", ev.Name)
			}
			if ev.Value != "" {
				p(" %s", short(ev.Value, 14))
			}
			if ev.Prev != "" {
				p(" (was %s)", short(ev.Prev, 14))
			}
			if ev.Kind == "refresh" {
				if ev.Proactive {
					p(", proactive")
				} else {
					p(", reactive")
				}
				switch {
				case ev.Lead > 0:
					p(" %s before expiry", secs(float64(ev.Lead)/1e9))
				case ev.Lead < 0:
					p(" %s after expiry", secs(float64(-ev.Lead)/1e9))
				}
			}
			if ev.ExpiresAt != 0 && d.Timeline != nil {
				p(", expires at +%s", secs(float64(ev.ExpiresAt-d.Timeline.Start)/1e9))
			}
			p("\n")
		}
	}
	if d.Truncated {
		p("(listing stops at %d requests)\n", MaxDetailRequests)
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, a ...any) { fmt.Fprintf(e, format, a...) }

func distText(d session.Dist, f func(float64) string) string {
	if d.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  min %s  max %s  (n=%d)", f(d.P50), f(d.P90), f(d.P99), f(d.Min), f(d.Max), d.Count)
}

func count(v float64) string { return fmt.Sprintf("%.0f", v) }

// secs prints seconds with a unit that fits.
func secs(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a == 0:
		return "0s"
	case a < 1e-3:
		return fmt.Sprintf("%.0fus", v*1e6)
	case a < 1:
		return fmt.Sprintf("%.1fms", v*1e3)
	case a < 120:
		return fmt.Sprintf("%.1fs", v)
	case a < 7200:
		return fmt.Sprintf("%.1fm", v/60)
	default:
		return fmt.Sprintf("%.1fh", v/3600)
	}
}

func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - 3
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
