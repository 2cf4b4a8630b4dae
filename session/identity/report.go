package identity

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/reprise-tool/reprise/session"
)

// Report holds the figures of 'reprise inspect --sessions'. Its JSON field
// names are stable: scripts may read them. Durations are in the unit their
// field name says (_s, _ms).
type Report struct {
	// From says where the timelines came from: "recording" (stored at
	// capture) or "recomputed" (by running the tracker over the exchanges).
	From  string `json:"timelines_from,omitempty"`
	Start int64  `json:"start"` // first request start, Unix ns
	End   int64  `json:"end"`   // last response end, Unix ns

	Exchanges    uint64 `json:"exchanges"`
	Attributed   uint64 `json:"attributed"`   // exchanges with a session
	Unattributed uint64 `json:"unattributed"` // exchanges no rule identified

	Sessions int            `json:"sessions"`
	Via      map[string]int `json:"via"`      // sessions by what identified them
	EndedBy  map[string]int `json:"ended_by"` // "logout", "idle", "open"
	Logins   int            `json:"logins"`
	Logouts  int            `json:"logouts"`
	Rejected int            `json:"rejected"` // 401s in sessions

	SessionLength       session.Dist `json:"session_length_s"`
	RequestsPerSession  session.Dist `json:"requests_per_session"`
	ThinkTime           session.Dist `json:"think_time_ms"`
	RefreshesPerSession session.Dist `json:"refreshes_per_session"`

	Refreshes RefreshReport `json:"refreshes"`

	// Top lists sessions with the most requests, at most the number asked.
	Top []SessionRow `json:"top_sessions"`

	// Tracking is what the tracker counted, when the timelines were
	// recomputed.
	Tracking *Stats `json:"tracking,omitempty"`

	// Damaged counts damaged regions of the recording that were skipped;
	// their exchanges are missing from every figure above.
	Damaged int `json:"damaged_regions,omitempty"`
}

// RefreshReport describes the refreshes of all sessions.
type RefreshReport struct {
	Total          int     `json:"total"`
	Proactive      int     `json:"proactive"`
	Reactive       int     `json:"reactive"`
	ProactiveShare float64 `json:"proactive_share"` // of Total, 0..1
	ReactiveShare  float64 `json:"reactive_share"`
	// Lead is how long before the old token's expiry the refreshes began
	// (negative: after it expired), over refreshes whose expiry is known.
	Lead session.Dist `json:"lead_s"`
	Peak PeakReport   `json:"peak"`
}

// PeakReport answers "do refreshes pile up when traffic peaks?": the
// busiest tenth of the recording's seconds (by requests started per
// second) and the share of refreshes that began within them. With
// refreshes spread like the traffic, Share is close to RequestShare; well
// above it, refreshes crowd the peak, as in an outage where every client
// renewed its token at the worst moment.
type PeakReport struct {
	SpanSeconds  int     `json:"span_seconds"`  // seconds from first to last request
	Seconds      int     `json:"seconds"`       // seconds in the busiest tenth
	MinRPS       int     `json:"min_rps"`       // requests per second at the edge of that tenth
	Refreshes    int     `json:"refreshes"`     // refreshes that began in those seconds
	Share        float64 `json:"share"`         // Refreshes / all refreshes
	RequestShare float64 `json:"request_share"` // requests in those seconds / all requests
}

// SessionRow is one line of the per-session listing.
type SessionRow struct {
	Key       string  `json:"key"`
	Via       string  `json:"via,omitempty"`
	Subject   string  `json:"subject,omitempty"`
	Offset    float64 `json:"offset_s"` // start, from the recording's start
	Length    float64 `json:"length_s"`
	Requests  int     `json:"requests"`
	Logins    int     `json:"logins"`
	Refreshes int     `json:"refreshes"`
	Proactive int     `json:"proactive_refreshes"`
	Reactive  int     `json:"reactive_refreshes"`
	Rejected  int     `json:"rejected"`
	Logouts   int     `json:"logouts"`
	EndedBy   string  `json:"ended_by,omitempty"`
}

// Summary accumulates what Report needs from a stream of exchanges whose
// Session is already set. Its memory grows with the recording's length in
// seconds (one counter per second) and with the number of sessions (one
// timestamp each), not with the number of exchanges.
type Summary struct {
	perSecond  map[int64]uint32
	lastEnd    map[string]int64
	think      *hdrhistogram.Histogram
	report     Report
	overlapped uint64
}

// NewSummary returns an empty Summary.
func NewSummary() *Summary {
	return &Summary{
		perSecond: map[int64]uint32{},
		lastEnd:   map[string]int64{},
		// Think times from 1 µs to 7 days, 3 significant figures.
		think: hdrhistogram.New(1, int64(7*24*time.Hour/time.Microsecond), 3),
	}
}

// Add counts one exchange.
func (s *Summary) Add(x *session.Exchange) {
	r := &s.report
	r.Exchanges++
	ts := x.Timing.RequestStart
	if ts != 0 && (r.Start == 0 || ts < r.Start) {
		r.Start = ts
	}
	if e := endTime(x); e > r.End {
		r.End = e
	}
	if ts != 0 {
		s.perSecond[ts/int64(time.Second)]++
	}
	if x.Session == "" {
		r.Unattributed++
		return
	}
	r.Attributed++
	if prev, ok := s.lastEnd[x.Session]; ok && prev != 0 {
		if gap := ts - prev; gap >= 0 {
			v := gap / int64(time.Microsecond)
			if v < 1 {
				v = 1
			}
			_ = s.think.RecordValue(v)
		} else {
			s.overlapped++
		}
	}
	if e := endTime(x); e > s.lastEnd[x.Session] {
		s.lastEnd[x.Session] = e
	}
}

// Report computes the figures from what was added and the sessions'
// timelines; top is how many sessions to list (0: none, negative: all).
func (s *Summary) Report(timelines []session.Timeline, top int) Report {
	r := s.report
	r.Via, r.EndedBy = map[string]int{}, map[string]int{}
	r.Sessions = len(timelines)
	var lengths, reqs, refreshes, leads []float64
	var refreshAt []int64
	for i := range timelines {
		tl := &timelines[i]
		r.Via[cmp.Or(tl.Via, "unknown")]++
		r.EndedBy[cmp.Or(tl.EndedBy, "open")]++
		r.Logins += tl.Logins
		r.Logouts += tl.Logouts
		r.Rejected += tl.Rejected
		r.Refreshes.Total += tl.Refreshes
		r.Refreshes.Proactive += tl.Proactive
		r.Refreshes.Reactive += tl.Reactive
		lengths = append(lengths, float64(tl.End-tl.Start)/1e9)
		reqs = append(reqs, float64(tl.Exchanges))
		refreshes = append(refreshes, float64(tl.Refreshes))
		// One refresh per exchange, whichever tokens it renewed.
		last := -1
		for _, ev := range tl.Events {
			if ev.Event.Kind != session.TokenRefresh || ev.Index == last {
				continue
			}
			last = ev.Index
			refreshAt = append(refreshAt, ev.At)
			if ev.Event.Lead != 0 {
				leads = append(leads, float64(ev.Event.Lead)/1e9)
			}
		}
	}
	r.SessionLength = session.Summarize(lengths)
	r.RequestsPerSession = session.Summarize(reqs)
	r.RefreshesPerSession = session.Summarize(refreshes)
	r.Refreshes.Lead = session.Summarize(leads)
	if n := r.Refreshes.Total; n > 0 {
		r.Refreshes.ProactiveShare = float64(r.Refreshes.Proactive) / float64(n)
		r.Refreshes.ReactiveShare = float64(r.Refreshes.Reactive) / float64(n)
	}
	r.Refreshes.Peak = s.peak(refreshAt)
	if h := s.think; h.TotalCount() > 0 {
		ms := func(v int64) float64 { return float64(v) / 1e3 }
		r.ThinkTime = session.Dist{Count: h.TotalCount(), Min: ms(h.Min()), Mean: h.Mean() / 1e3,
			P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)), Max: ms(h.Max())}
	}
	r.Top = topSessions(timelines, top, r.Start)
	return r
}

// peak finds the busiest tenth of the recording's seconds and how many of
// the refreshes (request start times) fall in it. Seconds without
// requests count toward the span, so a burst in a quiet recording stands
// out.
func (s *Summary) peak(refreshAt []int64) PeakReport {
	var p PeakReport
	if len(s.perSecond) == 0 {
		return p
	}
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	type sec struct {
		at int64
		n  uint32
	}
	secs := make([]sec, 0, len(s.perSecond))
	var total uint64
	for at, n := range s.perSecond {
		first, last = min(first, at), max(last, at)
		secs = append(secs, sec{at, n})
		total += uint64(n)
	}
	p.SpanSeconds = int(last - first + 1)
	p.Seconds = (p.SpanSeconds + 9) / 10
	slices.SortFunc(secs, func(a, b sec) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.at, b.at)
	})
	busy := make(map[int64]bool, p.Seconds)
	var inPeak uint64
	for _, sc := range secs[:min(p.Seconds, len(secs))] {
		busy[sc.at] = true
		inPeak += uint64(sc.n)
		p.MinRPS = int(sc.n)
	}
	for _, at := range refreshAt {
		if busy[at/int64(time.Second)] {
			p.Refreshes++
		}
	}
	if len(refreshAt) > 0 {
		p.Share = float64(p.Refreshes) / float64(len(refreshAt))
	}
	if total > 0 {
		p.RequestShare = float64(inPeak) / float64(total)
	}
	return p
}

func topSessions(timelines []session.Timeline, n int, start int64) []SessionRow {
	if n == 0 {
		return nil
	}
	idx := make([]int, len(timelines))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := cmp.Compare(timelines[b].Exchanges, timelines[a].Exchanges); c != 0 {
			return c
		}
		return cmp.Compare(timelines[a].Key, timelines[b].Key)
	})
	if n > 0 && n < len(idx) {
		idx = idx[:n]
	}
	rows := make([]SessionRow, 0, len(idx))
	for _, i := range idx {
		rows = append(rows, rowOf(&timelines[i], start))
	}
	return rows
}

func rowOf(tl *session.Timeline, start int64) SessionRow {
	return SessionRow{
		Key: tl.Key, Via: tl.Via, Subject: tl.Subject,
		Offset: float64(tl.Start-start) / 1e9, Length: float64(tl.End-tl.Start) / 1e9,
		Requests: tl.Exchanges, Logins: tl.Logins, Refreshes: tl.Refreshes,
		Proactive: tl.Proactive, Reactive: tl.Reactive, Rejected: tl.Rejected,
		Logouts: tl.Logouts, EndedBy: tl.EndedBy,
	}
}

// Detail is one session's timeline with its requests, for
// 'reprise inspect --session ID'.
type Detail struct {
	Key      string            `json:"key"`
	Timeline *session.Timeline `json:"timeline,omitempty"`
	Requests []RequestRow      `json:"requests"`
	// Truncated is set when the session had more requests than the
	// listing keeps (MaxDetailRequests).
	Truncated bool `json:"truncated,omitempty"`
}

// RequestRow is one request of a session.
type RequestRow struct {
	Offset  float64              `json:"offset_ms"` // from the session's first request
	Method  string               `json:"method"`
	Target  string               `json:"target"`
	Status  int                  `json:"status"` // 0: no response
	Latency float64              `json:"latency_ms"`
	Events  []session.TokenEvent `json:"events,omitempty"`
}

// MaxDetailRequests bounds the requests a Detail keeps.
const MaxDetailRequests = 100_000

// NewDetail returns a collector for the session with key.
func NewDetail(key string) *Detail { return &Detail{Key: key, Requests: []RequestRow{}} }

// Add keeps x when it belongs to the session.
func (d *Detail) Add(x *session.Exchange) {
	if x.Session != d.Key {
		return
	}
	if len(d.Requests) >= MaxDetailRequests {
		d.Truncated = true
		return
	}
	d.Requests = append(d.Requests, RequestRow{
		Offset: float64(x.Timing.RequestStart), Method: x.Request.Method, Target: x.Request.Target,
		Status: x.Response.Status, Latency: float64(x.Timing.Latency()) / 1e6,
		Events: slices.Clone(x.Tokens),
	})
}

// Finish orders the requests, makes offsets relative to the first, and
// attaches the session's timeline when timelines holds it. It reports
// whether the session was found at all.
func (d *Detail) Finish(timelines []session.Timeline) bool {
	for i := range timelines {
		if timelines[i].Key == d.Key {
			tl := timelines[i]
			d.Timeline = &tl
		}
	}
	slices.SortStableFunc(d.Requests, func(a, b RequestRow) int { return cmp.Compare(a.Offset, b.Offset) })
	if len(d.Requests) > 0 {
		base := d.Requests[0].Offset
		if d.Timeline != nil && d.Timeline.Start != 0 {
			base = float64(d.Timeline.Start)
		}
		for i := range d.Requests {
			d.Requests[i].Offset = (d.Requests[i].Offset - base) / 1e6
		}
	}
	return d.Timeline != nil || len(d.Requests) > 0
}
