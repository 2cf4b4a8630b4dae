// Package live shows a replay while it runs: a progress display on stderr
// (a bar on a terminal, a plain line every few seconds elsewhere) and
// Prometheus metrics served on --metrics-addr. It subscribes to the
// engine's events (Display is a replay.Observer and a replay.Monitor);
// the engine does not import it.
package live

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/reprise-tool/reprise/replay"
)

// Snapshot is the state of a replay at one moment, as the engine gives
// it to its monitors (see Display).
type Snapshot replay.Status

// Line formats the snapshot as one line of plain text.
func (s Snapshot) Line() string {
	var b strings.Builder
	b.WriteString(round(s.Elapsed).String())
	if s.Total > 0 {
		fmt.Fprintf(&b, "/%s", round(s.Total))
	}
	if s.Stage != "" {
		fmt.Fprintf(&b, " stage %s", s.Stage)
		if s.Stages > 1 {
			fmt.Fprintf(&b, " (%d/%d)", s.StageIndex, s.Stages)
		}
	} else if s.Speed > 0 {
		fmt.Fprintf(&b, " %gx", s.Speed)
	}
	if s.Stopping != "" {
		// Early in the line, so that a narrow terminal still shows it.
		fmt.Fprintf(&b, " | stopping: %s", s.Stopping)
	}
	fmt.Fprintf(&b, " | %.0f req/s", s.RPS)
	if s.IntendedRPS > 0 {
		fmt.Fprintf(&b, " (due %.0f)", s.IntendedRPS)
	}
	fmt.Fprintf(&b, " | p50 %s p99 %s", ms(s.P50), ms(s.P99))
	fmt.Fprintf(&b, " | errors %d", s.Errors)
	if s.Completed > 0 && s.Errors > 0 {
		fmt.Fprintf(&b, " (%.1f%%)", 100*float64(s.Errors)/float64(s.Completed))
	}
	fmt.Fprintf(&b, " | lag %s | in flight %d | sent %d", ms(s.Lag), s.InFlight, s.Sent)
	return b.String()
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }

// ms prints a latency readably: 850µs, 12ms, 2.3s.
func ms(d time.Duration) string {
	switch {
	case d <= 0:
		return "0ms"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

// ProgressOption configures a Progress.
type ProgressOption func(*progressOptions) error

type progressOptions struct {
	tty      *bool
	interval time.Duration
}

// WithTerminal forces the bar (true) or plain lines (false) instead of
// detecting a terminal.
func WithTerminal(tty bool) ProgressOption {
	return func(o *progressOptions) error { o.tty = &tty; return nil }
}

// WithPlainInterval sets how often plain lines are written (5 s by
// default), at least 1 s.
func WithPlainInterval(d time.Duration) ProgressOption {
	return func(o *progressOptions) error {
		if d < time.Second {
			return fmt.Errorf("progress interval %v: give at least 1s", d)
		}
		o.interval = d
		return nil
	}
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Progress writes a replay's progress to w, normally stderr. Safe for
// concurrent use.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	interval time.Duration
	bar      *progressbar.ProgressBar
	last     time.Duration // Elapsed of the last plain line; -1 before the first
	done     bool
	cols     int // terminal width, 0 when unknown
	width    int // the bar's width
}

// NewProgress returns a progress display on w: a bar when w is a terminal,
// plain lines otherwise.
func NewProgress(w io.Writer, opts ...ProgressOption) (*Progress, error) {
	o := progressOptions{interval: 5 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	p := &Progress{w: w, interval: o.interval, last: -1}
	if o.tty != nil {
		p.tty = *o.tty
	} else {
		p.tty = IsTerminal(w)
	}
	return p, nil
}

// Terminal reports whether the display is a bar.
func (p *Progress) Terminal() bool { return p.tty }

func (p *Progress) newBar(total time.Duration) *progressbar.ProgressBar {
	max := int64(-1)
	if total > 0 {
		max = int64(total / time.Millisecond)
	}
	width := 20
	if f, ok := p.w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			p.cols = cols
			if cols < 140 {
				width = 10
			}
		}
	}
	p.width = width
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetWidth(width),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionThrottle(0),
		progressbar.OptionSetRenderBlankState(false),
		progressbar.OptionSetTheme(progressbar.Theme{Saucer: "=", SaucerHead: ">", SaucerPadding: " ", BarStart: "[", BarEnd: "]"}),
	)
}

// Update shows s. On a terminal every call redraws the bar; otherwise a
// line is written when the interval has passed since the last one (by
// s.Elapsed), and at once when s.Stopping first appears.
func (p *Progress) Update(s Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	if p.tty {
		if p.bar == nil {
			p.bar = p.newBar(s.Total)
		}
		if s.Total > 0 && int64(s.Total/time.Millisecond) != p.bar.GetMax64() {
			p.bar.ChangeMax64(int64(s.Total / time.Millisecond))
		}
		p.bar.Describe(p.fit(s.Line()))
		v := int64(s.Elapsed / time.Millisecond)
		if max := p.bar.GetMax64(); max > 0 && v > max {
			v = max
		}
		p.bar.Set64(v)
		return
	}
	if p.last >= 0 && s.Elapsed-p.last < p.interval && s.Stopping == "" {
		return
	}
	p.last = s.Elapsed
	fmt.Fprintln(p.w, "reprise: "+s.Line())
}

// fit shortens a line to the terminal's width, so that the bar redraws in
// place instead of wrapping onto new lines.
func (p *Progress) fit(line string) string {
	room := p.cols - p.width - 10 // percentage, brackets, spaces
	if p.cols <= 0 || room <= 0 {
		return line
	}
	r := []rune(line)
	if len(r) <= room {
		return line
	}
	return string(r[:room-1]) + "…"
}

// Finish shows the final state and ends the display; later Updates are
// ignored.
func (p *Progress) Finish(s Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	if p.tty && p.bar != nil {
		// The bar stays where the run ended: an aborted run does not
		// show 100%.
		p.bar.Describe(p.fit(s.Line()))
		v := int64(s.Elapsed / time.Millisecond)
		if max := p.bar.GetMax64(); max > 0 && v > max {
			v = max
		}
		p.bar.Set64(v)
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintln(p.w, "reprise: "+s.Line())
}

// Run calls Update with snap() every interval until ctx ends; the engine
// may run it in a goroutine instead of calling Update itself.
func (p *Progress) Run(ctx context.Context, every time.Duration, snap func() Snapshot) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			p.Update(snap())
		}
	}
}
