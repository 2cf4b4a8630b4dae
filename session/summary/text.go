package summary

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText prints s for a person: the headline first, then the shape of
// the traffic, then everything lost or damaged.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	s.writeShape(&b)
	s.writeConns(&b)
	s.writeTLS(&b)
	s.writeRoutes(&b)
	s.writeLosses(&b)
	s.writeDamage(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeShape prints the headline: size, span, files, rate, methods,
// statuses, sessions and token events.
func (s *Summary) writeShape(b *strings.Builder) {
	var bytes int64
	for _, f := range s.Files {
		bytes += f.Bytes
	}
	fmt.Fprintf(b, "%s in %s (%s)\n", plural(s.Exchanges, "exchange"), plural(int64(len(s.Files)), "file"), HumanBytes(bytes))
	if s.Exchanges > 0 {
		fmt.Fprintf(b, "time span    %s .. %s (%s)\n", stamp(s.Start), stamp(s.End), time.Duration(s.DurationSeconds*1e9).Round(time.Millisecond))
	}
	for _, f := range s.Files {
		src := f.Source
		if f.Filter != "" {
			src += " filter " + f.Filter
		}
		extra := ""
		if f.Tool != "" {
			extra = ", by " + f.Tool
		}
		if !f.Finished {
			extra += ", not finished"
		}
		fmt.Fprintf(b, "file         %s: %s%s\n", f.Path, src, extra)
	}
	if len(s.Rate.PerSecond) > 0 {
		fmt.Fprintf(b, "requests/s   %s  peak %.1f/s, mean %.1f/s, %gs per column\n",
			sparkline(s.Rate.PerSecond, s.Rate.Peak), s.Rate.Peak, s.Rate.Mean, s.Rate.BucketSeconds)
	}
	if len(s.Methods) > 0 {
		fmt.Fprintf(b, "methods      %s\n", joinCounts(s.Methods, s.Exchanges))
	}
	if len(s.Statuses) > 0 {
		parts := make([]string, len(s.Statuses))
		for i, st := range s.Statuses {
			name := fmt.Sprint(st.Status)
			switch st.Status {
			case 0:
				name = "none"
			case -1:
				name = "other"
			}
			parts[i] = fmt.Sprintf("%s %d", name, st.Count)
		}
		fmt.Fprintf(b, "statuses     %s\n", strings.Join(parts, "  "))
	}
	fmt.Fprintf(b, "sessions     %d", s.Sessions)
	if s.SessionsCapped {
		b.WriteString(" or more")
	}
	if s.Quick {
		fmt.Fprintf(b, " (added up over files, %s stored)\n", plural(int64(s.Timelines), "timeline"))
	} else {
		fmt.Fprintf(b, " (%s without one, %s stored)\n", plural(s.ExchangesWithoutSession, "exchange"), plural(int64(s.Timelines), "timeline"))
	}
	if len(s.TokenEvents) > 0 {
		fmt.Fprintf(b, "token events %s\n", joinCounts(s.TokenEvents, 0))
	} else {
		b.WriteString("token events none\n")
	}
	if s.Quick {
		b.WriteString("\n(quick summary from the trailer index: routes and latencies need a full read)\n")
	}
}

// writeRoutes prints the busiest routes, when the summary has them.
func (s *Summary) writeRoutes(b *strings.Builder) {
	if len(s.Routes) > 0 {
		fmt.Fprintf(b, "\ntop routes (%d of %d)\n", len(s.Routes), s.DistinctRoutes)
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
		// The route follows the last tab, so it is left as it is, not aligned.
		fmt.Fprintf(tw, "count\tmedian\terrors\t  route\n")
		for _, r := range s.Routes {
			fmt.Fprintf(tw, "%d\t%.2fms\t%d\t  %s %s\n", r.Count, r.MedianMS, r.Errors, r.Method, r.Route)
		}
		tw.Flush()
	}
}

// writeLosses prints what the capture lost or cut, or "none".
func (s *Summary) writeLosses(b *strings.Builder) {
	b.WriteString("\nlosses\n")
	l := s.Losses
	lines := 0
	line := func(n int64, format string, args ...any) {
		if n > 0 {
			fmt.Fprintf(b, "  "+format+"\n", args...)
			lines++
		}
	}
	line(int64(l.PacketsDropped), "%d packets dropped by the kernel (of %d seen)", l.PacketsDropped, l.PacketsSeen)
	line(int64(l.PacketsMalformed), "%d malformed packets", l.PacketsMalformed)
	line(int64(l.PacketsDuplicate), "%d duplicate packets", l.PacketsDuplicate)
	keys := make([]string, 0, len(l.Unsupported))
	for k := range l.Unsupported {
		if s.TLS == nil || !shownAsTLS(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		line(int64(l.Unsupported[k]), "%d connections skipped as %s", l.Unsupported[k], k)
	}
	if s.Quick {
		line(l.Incomplete, "%d incomplete exchanges", l.Incomplete)
	} else {
		line(l.Incomplete, "%d incomplete exchanges (%d without a response, %d with request gaps, %d with response gaps)",
			l.Incomplete, l.NoResponse, l.RequestGaps, l.ResponseGaps)
	}
	if uint64(l.Incomplete) != l.IncompleteCounted {
		line(int64(l.IncompleteCounted), "%d incomplete exchanges counted by the capture", l.IncompleteCounted)
	}
	if s.Quick {
		line(l.Truncated, "%d exchanges with a body cut to the cap", l.Truncated)
	} else {
		line(l.TruncatedRequests+l.TruncatedResponses, "%d bodies cut to the cap (%d requests, %d responses)",
			l.TruncatedRequests+l.TruncatedResponses, l.TruncatedRequests, l.TruncatedResponses)
	}
	line(l.Redacted, "%d exchanges redacted", l.Redacted)
	line(l.Warnings, "%d parse warnings", l.Warnings)
	for _, w := range l.TopWarnings {
		fmt.Fprintf(b, "    %d  %s\n", w.Count, w.Name)
	}
	if lines == 0 {
		b.WriteString("  none\n")
	}
}

// writeDamage prints the recording's damage, or "none".
func (s *Summary) writeDamage(b *strings.Builder) {
	d := s.Damage
	b.WriteString("\ndamage\n")
	if !d.Damaged && len(d.Unfinished) == 0 {
		b.WriteString("  none\n")
	}
	for _, p := range d.Unfinished {
		fmt.Fprintf(b, "  %s has no footer: its writer did not finish (killed, or still recording)\n", p)
	}
	if d.Damaged {
		fmt.Fprintf(b, "  %d damaged region(s): %s skipped, %d records lost", d.Regions, HumanBytes(d.SkippedBytes), d.LostRecords)
		if d.TornTail {
			b.WriteString(", the last block is torn")
		}
		b.WriteString("\n")
		for _, r := range d.Reports {
			fmt.Fprintf(b, "  %s\n", r.Error)
		}
		b.WriteString("  everything else above was recovered\n")
	}
}

func sparkline(vals []float64, peak float64) string {
	const bars = "▁▂▃▄▅▆▇█"
	r := []rune(bars)
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if peak > 0 {
			i = int(v / peak * float64(len(r)-1))
		}
		if v == 0 {
			b.WriteRune(' ')
			continue
		}
		b.WriteRune(r[min(max(i, 0), len(r)-1)])
	}
	return b.String()
}

func joinCounts(cs []Count, total int64) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		if total > 0 {
			parts[i] = fmt.Sprintf("%s %d (%.0f%%)", c.Name, c.Count, 100*float64(c.Count)/float64(total))
		} else {
			parts[i] = fmt.Sprintf("%s %d", c.Name, c.Count)
		}
	}
	return strings.Join(parts, "  ")
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func stamp(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000 UTC")
}

// HumanBytes writes a byte count in B, KiB, MiB or GiB. Every summary
// and command prints sizes through it, so one size reads the same
// everywhere.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
