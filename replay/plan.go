package replay

import (
	"errors"
	"fmt"
	"strings"

	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/corrplan"
)

// The look-ahead window's bounds besides its recording time: whichever
// binds first releases the earliest exchange. At 30k requests a second a
// 5s window held 150k exchanges and every recorded body; these keep the
// window to a few megabytes whatever the recording's rate.
const (
	DefaultWindowExchanges = 2048
	DefaultWindowBytes     = 2 << 20
)

// itemOverhead is what an exchange held in the window costs besides its
// bodies and header text: the item, the exchange and their slices.
const itemOverhead = 600

// planOptions are the options of the correlation plan and of the
// engine's memory bounds.
type planOptions struct {
	plan            *session.CorrelationPlan
	index           *corrplan.Index // from plan; nil learns everything
	windowExchanges int
	windowBytes     int64
}

func defaultPlanOptions() planOptions {
	return planOptions{windowExchanges: DefaultWindowExchanges, windowBytes: DefaultWindowBytes}
}

// WithPlan gives the recording's correlation plan (the metadata's, or
// Survey.Plan). The replay then learns live values only from the
// responses and fields the plan names, reads every other response for
// its status and size alone, and drops the recorded bodies nothing
// learns from as it reads them (unless WithCompare, which needs them,
// and then learns everything as without a plan). A nil plan is no plan.
// The exchanges the source yields are modified: a source that hands the
// same exchanges to several runs must copy them.
func WithPlan(p *session.CorrelationPlan) Option {
	return func(o *options) error {
		o.plan, o.index = p, corrplan.NewIndex(p)
		return nil
	}
}

// WithWindowLimits bounds the look-ahead window (see WithWindow) by the
// exchanges it holds and their approximate size in bytes as well as by
// recording time (defaults DefaultWindowExchanges, DefaultWindowBytes);
// the report says when a bound released exchanges before the window's
// time. A bound binds only on recordings dense in time: an exchange that
// comes later than the window could sort is sent at once.
func WithWindowLimits(exchanges int, bytes int64) Option {
	return func(o *options) error {
		if exchanges < 1 || bytes < 1 {
			return errors.New("the look-ahead window needs room for at least one exchange and one byte")
		}
		o.windowExchanges, o.windowBytes = exchanges, bytes
		return nil
	}
}

// planIndex is the plan in force: none under WithCompare, which discounts
// every live value of a response and so must learn them all.
func (r *Replayer) planIndex() *corrplan.Index {
	if r.o.compare != nil {
		return nil
	}
	return r.o.index
}

// slim drops what of a recorded exchange the plan says nothing needs:
// the response body when no field of it is learned, and the response
// headers too when nothing at all is. Status and size stay for the
// report. It runs as the feeder reads, before the look-ahead window holds
// the exchange.
func (r *Replayer) slim(ex *session.Exchange, route string) (dropped bool) {
	x := r.planIndex()
	if x == nil || ex.Flags&session.FlagNoResponse != 0 {
		return false
	}
	resp := &ex.Response
	if len(resp.Body) > 0 && !x.NeedsBody(route) {
		resp.Body, dropped = nil, true
	}
	if len(resp.Header) > 0 && !x.Learns(route) {
		resp.Header = nil
	}
	return dropped
}

// recordedFields are the fields of it's recorded response that are
// learned and that the order rule reads as issued: those the plan names,
// or every one without a plan.
func (r *Replayer) recordedFields(it *item) map[string]correlate.Field {
	ex := it.ex
	if ex.Flags&session.FlagNoResponse != 0 || len(ex.Response.Body) == 0 && len(ex.Response.Header) == 0 {
		return nil
	}
	x := r.planIndex()
	if !x.Learns(it.route) {
		return nil
	}
	return x.Filter(it.route, correlate.Fields(&ex.Response))
}

// itemSize is what an exchange costs the look-ahead window, roughly.
func itemSize(ex *session.Exchange) int64 {
	n := itemOverhead + len(ex.Request.Target) + len(ex.Request.Body) + len(ex.Response.Body)
	for _, h := range ex.Request.Header {
		n += len(h.Name) + len(h.Value) + 32
	}
	for _, h := range ex.Response.Header {
		n += len(h.Name) + len(h.Value) + 32
	}
	return int64(n)
}

// MemoryReport says what the engine's memory bounds did.
type MemoryReport struct {
	// WindowExchanges and WindowBytes are the look-ahead window's bounds;
	// ByExchanges and ByBytes count the exchanges each bound released
	// before the window's recording time had passed (0: it never bound).
	WindowExchanges int    `json:"window_exchanges"`
	WindowBytes     int64  `json:"window_bytes"`
	ByExchanges     uint64 `json:"released_by_exchanges,omitempty"`
	ByBytes         uint64 `json:"released_by_bytes,omitempty"`
	// PeakExchanges and PeakBytes are the most the window held at once
	// (the bytes as itemSize counts them).
	PeakExchanges int   `json:"peak_exchanges,omitempty"`
	PeakBytes     int64 `json:"peak_bytes,omitempty"`
	// BodiesDropped counts recorded response bodies dropped as they were
	// read because the plan learns nothing from them: by the recording's
	// reader, which then never copies them (session.BodyFilter), or by
	// the engine from a source that cannot.
	BodiesDropped uint64 `json:"bodies_dropped,omitempty"`
}

// PlanReport says which correlation plan the replay followed and what it
// could not replace.
type PlanReport struct {
	// Rules is how many places the plan learns from (0 with All).
	Rules int  `json:"rules"`
	All   bool `json:"all,omitempty"`
	// Unreplaced lists the places of requests that carried a credential
	// or id no recorded response issued: they were sent as recorded.
	Unreplaced []session.UnreplacedValue `json:"unreplaced,omitempty"`
	Memory     MemoryReport              `json:"memory"`
}

// fillPlan puts the plan and the memory bounds in the report, when a
// plan was given or a bound bound.
func (r *Replayer) fillPlan(rep *Report, span spanInfo) {
	m := span.memory
	if r.o.plan == nil && m.ByBytes == 0 && m.ByExchanges == 0 {
		return
	}
	pr := &PlanReport{Memory: m}
	pr.Memory.WindowExchanges, pr.Memory.WindowBytes = r.o.windowExchanges, r.o.windowBytes
	if p := r.o.plan; p != nil {
		pr.Rules, pr.All, pr.Unreplaced = len(p.Rules), p.All, p.Unreplaced
	}
	rep.Plan = pr
}

// maxUnreplacedShown bounds the unreplaced places the summary names.
const maxUnreplacedShown = 3

// writeSummary writes the plan's lines of the summary; nothing for a
// report without a plan section.
func (p *PlanReport) writeSummary(b *strings.Builder) {
	if p == nil {
		return
	}
	if n := len(p.Unreplaced); n > 0 {
		var total uint64
		names := make([]string, 0, maxUnreplacedShown+1)
		for i, u := range p.Unreplaced {
			total += u.Requests
			if i < maxUnreplacedShown {
				names = append(names, fmt.Sprintf("%s %s ×%d", u.Route, u.Place, u.Requests))
			}
		}
		if n > maxUnreplacedShown {
			names = append(names, fmt.Sprintf("and %d more", n-maxUnreplacedShown))
		}
		fmt.Fprintf(b, "  unreplaced  %d requests carried values no recorded response issued, sent as recorded: %s\n", total, strings.Join(names, "; "))
	}
	m := p.Memory
	if m.ByExchanges > 0 || m.ByBytes > 0 {
		fmt.Fprintf(b, "  window    bound: %d exchanges released early at %d exchanges, %d at %s; sorted over less than the window's time\n",
			m.ByExchanges, m.WindowExchanges, m.ByBytes, formatBytes(m.WindowBytes))
	}
}

func formatBytes(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
