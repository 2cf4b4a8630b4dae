// Package summary describes recordings at a glance: what 'reprise inspect'
// prints. It reads recordings through session.Open and keeps bounded state
// (fixed-size histograms, capped route and session sets), so summarising a
// file of any length takes the same memory.
//
// The JSON form (Summary marshalled with encoding/json) is a stable
// interface: field names are snake_case, are only ever added, and are
// documented on the fields below and in session/FORMAT.md.
package summary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/reprise-tool/reprise/session"
)

// Options tune a summary. The zero value is usable.
type Options struct {
	// TopRoutes is how many routes to list (default 10).
	TopRoutes int
	// ChartColumns is the width of the requests-per-second chart (default 60).
	ChartColumns int
	// Progress, when set, is called now and then with the bytes read so far
	// and the total size of the files.
	Progress func(done, total int64)
}

// Summary is what a recording holds and what it lost.
type Summary struct {
	Files []File `json:"files"`
	// Start and End are the first request's start and the last response's
	// end, in Unix nanoseconds (0 when there are no exchanges).
	Start           int64   `json:"start_ns"`
	End             int64   `json:"end_ns"`
	DurationSeconds float64 `json:"duration_seconds"`
	Exchanges       int64   `json:"exchanges"`
	Rate            Rate    `json:"rate"`
	Methods         []Count `json:"methods"`
	// Routes are the busiest routes: request paths with ids (numbers,
	// UUIDs, long hex) replaced by {id}, and query strings dropped.
	Routes         []Route       `json:"routes"`
	DistinctRoutes int           `json:"distinct_routes"`
	Statuses       []StatusCount `json:"statuses"`
	// Sessions counts distinct session keys; ExchangesWithoutSession
	// counts exchanges the identity tracker could not attribute.
	Sessions                int64   `json:"sessions"`
	SessionsCapped          bool    `json:"sessions_capped,omitempty"`
	ExchangesWithoutSession int64   `json:"exchanges_without_session"`
	Timelines               int     `json:"timelines"`
	TokenEvents             []Count `json:"token_events"`
	// TLS is set when the capture met TLS: what it decrypted and what it
	// could not read, by server name.
	TLS *TLS `json:"tls,omitempty"`
	// Connections is what the connection records say (format 1.2); nil
	// for an older recording.
	Connections *Conns `json:"connections,omitempty"`
	Losses      Losses `json:"losses"`
	Damage      Damage `json:"damage"`
	// Quick is set when the summary came from the files' trailer indexes
	// alone (Quick): routes and latencies are then left out.
	Quick bool `json:"quick"`
}

// File is one recording read.
type File struct {
	Path     string `json:"path"`
	Bytes    int64  `json:"bytes"`
	Source   string `json:"source"`
	Filter   string `json:"filter,omitempty"`
	Host     string `json:"host,omitempty"`
	Tool     string `json:"tool,omitempty"`
	MaxBody  int64  `json:"max_body"`
	Finished bool   `json:"finished"` // the writer closed it (it has a footer)
}

// Rate is requests per second over time.
type Rate struct {
	// BucketSeconds is the width of each entry of PerSecond.
	BucketSeconds float64 `json:"bucket_seconds"`
	// PerSecond is the mean request rate within each bucket, in order.
	PerSecond []float64 `json:"per_second"`
	Peak      float64   `json:"peak_per_second"`
	Mean      float64   `json:"mean_per_second"`
}

// Count is a named count.
type Count struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// StatusCount counts one response status (0: no response).
type StatusCount struct {
	Status int   `json:"status"`
	Count  int64 `json:"count"`
}

// Route is one normalised route.
type Route struct {
	Method string `json:"method"`
	Route  string `json:"route"`
	Count  int64  `json:"count"`
	// MedianMS is the median latency (request's last byte to response's
	// last byte) in milliseconds, over exchanges with both times known.
	MedianMS float64 `json:"median_ms"`
	Errors   int64   `json:"errors"` // 5xx responses and missing responses
}

// Losses is everything the recording knows it is missing.
type Losses struct {
	PacketsSeen      uint64            `json:"packets_seen"`
	PacketsDropped   uint64            `json:"packets_dropped"`
	PacketsDuplicate uint64            `json:"packets_duplicate"`
	PacketsMalformed uint64            `json:"packets_malformed"`
	Unsupported      map[string]uint64 `json:"unsupported"`
	// IncompleteCounted is the capture's own incomplete-exchange counter;
	// the flag counts below come from the exchanges themselves.
	IncompleteCounted uint64 `json:"incomplete_counted"`
	Incomplete        int64  `json:"incomplete"`
	NoResponse        int64  `json:"no_response"`
	RequestGaps       int64  `json:"request_gaps"`
	ResponseGaps      int64  `json:"response_gaps"`
	// Truncated counts exchanges with a body cut to the cap;
	// TruncatedRequests and TruncatedResponses split it by side.
	Truncated          int64   `json:"truncated"`
	TruncatedRequests  int64   `json:"truncated_requests"`
	TruncatedResponses int64   `json:"truncated_responses"`
	Redacted           int64   `json:"redacted"`
	Warnings           int64   `json:"warnings"`
	TopWarnings        []Count `json:"top_warnings"`
}

// Damage is what the reader found broken in the files.
type Damage struct {
	Damaged      bool     `json:"damaged"`
	Regions      int64    `json:"regions"`
	SkippedBytes int64    `json:"skipped_bytes"`
	LostRecords  int64    `json:"lost_records"`
	TornTail     bool     `json:"torn_tail"`
	Unfinished   []string `json:"unfinished_files"` // files without a footer (writer killed or still running)
	Reports      []Report `json:"reports"`
}

// Report is one damaged region.
type Report struct {
	Path    string `json:"path"`
	Offset  int64  `json:"offset"`
	Skipped int64  `json:"skipped_bytes"`
	Records int    `json:"lost_records"`
	Error   string `json:"error"`
}

// ErrDamaged is returned (wrapped) by Files along with a full summary when
// a recording was damaged; the summary covers what was recovered.
var ErrDamaged = errors.New("recording damaged")

// Files summarises the recordings at paths (files or glob patterns). When
// a file is damaged it returns the summary of what was recovered and an
// error wrapping ErrDamaged; other errors (a missing file, not a recording)
// return a nil summary.
func Files(ctx context.Context, paths []string, opt Options) (*Summary, error) {
	mr, err := session.Open(paths...)
	if err != nil {
		return nil, err
	}
	defer mr.Close()
	b := NewBuilder(opt)
	var total int64
	readers := mr.Readers()
	for i, p := range mr.Paths() {
		md := readers[i].Metadata()
		b.files = append(b.files, File{Path: p, Source: md.Source, Filter: md.Filter, Host: md.Host, Tool: md.Tool, MaxBody: md.MaxBody})
		if ix := readers[i].Index(); ix != nil && ix.Exchanges > 0 {
			b.rate.hint(ix.First)
		}
		if sz, err := fileSize(p); err == nil {
			total += sz
			b.files[i].Bytes = sz
		}
	}
	var ex session.Exchange
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if opt.Progress != nil {
				opt.Progress(mr.Stats().Bytes, total)
			}
		}
		err := mr.Read(&ex)
		if err == io.EOF {
			break
		}
		var ce *session.CorruptError
		if errors.As(err, &ce) {
			continue // counted through mr.Damage below
		}
		if err != nil {
			return nil, err
		}
		b.Add(&ex)
	}
	if opt.Progress != nil {
		opt.Progress(total, total)
	}
	for i, r := range readers {
		b.AddFile(&b.files[i], r)
	}
	s := b.Summary()
	if s.Damage.Damaged {
		return s, fmt.Errorf("%w: %d damaged region(s), %d bytes skipped", ErrDamaged, s.Damage.Regions, s.Damage.SkippedBytes)
	}
	return s, nil
}

// Builder accumulates a summary exchange by exchange, for callers that
// read recordings themselves.
type Builder struct {
	opt      Options
	files    []File
	s        Summary
	methods  map[string]int64
	statuses map[int]int64
	tokens   map[string]int64
	warnings map[string]int64
	routes   map[routeKey]*routeStats
	sessions map[string]struct{}
	rate     rateCounter
	unsup    map[string]uint64
	tls      map[string]int64
	conns    *connBuilder
}

type routeKey struct{ method, route string }

type routeStats struct {
	count, errors int64
	lat           logHistogram
}

// Bounds on the Builder's maps, so that garbage in a recording cannot grow
// them without end; overflow is counted under "other".
const (
	maxRoutes   = 5000
	maxKeys     = 200
	maxSessions = 1 << 18
)

// NewBuilder returns an empty Builder.
func NewBuilder(opt Options) *Builder {
	if opt.TopRoutes <= 0 {
		opt.TopRoutes = 10
	}
	if opt.ChartColumns <= 0 {
		opt.ChartColumns = 60
	}
	return &Builder{
		opt:      opt,
		methods:  map[string]int64{},
		statuses: map[int]int64{},
		tokens:   map[string]int64{},
		warnings: map[string]int64{},
		routes:   map[routeKey]*routeStats{},
		sessions: map[string]struct{}{},
		unsup:    map[string]uint64{},
	}
}

func bump[K comparable](m map[K]int64, k, other K, n int64) {
	if _, ok := m[k]; !ok && len(m) >= maxKeys {
		k = other
	}
	m[k] += n
}

// Add counts one exchange. It keeps nothing of ex.
func (b *Builder) Add(ex *session.Exchange) {
	s := &b.s
	s.Exchanges++
	t := ex.Timing
	if t.RequestStart != 0 && (s.Start == 0 || t.RequestStart < s.Start) {
		s.Start = t.RequestStart
	}
	s.End = max(s.End, t.RequestStart, t.RequestEnd, t.ResponseEnd)
	b.rate.add(t.RequestStart)
	bump(b.methods, ex.Request.Method, "OTHER", 1)
	status := ex.Response.Status
	if ex.Flags&session.FlagNoResponse != 0 {
		status = 0
	}
	bump(b.statuses, status, -1, 1)
	k := routeKey{ex.Request.Method, session.RoutePath(ex.Request.Target)}
	rs := b.routes[k]
	if rs == nil {
		if len(b.routes) >= maxRoutes {
			k = routeKey{"*", "(other routes)"}
			rs = b.routes[k]
		}
		if rs == nil {
			rs = &routeStats{}
			b.routes[k] = rs
		}
	}
	rs.count++
	if status == 0 || status >= 500 {
		rs.errors++
	}
	if l := t.Latency(); l > 0 {
		rs.lat.add(int64(l))
	}
	if ex.Session == "" {
		s.ExchangesWithoutSession++
	} else if _, ok := b.sessions[ex.Session]; !ok {
		if len(b.sessions) < maxSessions {
			b.sessions[ex.Session] = struct{}{}
		} else {
			s.SessionsCapped = true
		}
	}
	for i, tk := range ex.Tokens {
		if !session.KindSeen(ex.Tokens[:i], tk.Kind) { // exchanges, once per kind
			bump(b.tokens, string(tk.Kind), "other", 1)
		}
	}
	l := &s.Losses
	f := ex.Flags
	if f.Incomplete() {
		l.Incomplete++
	}
	count := func(flag session.Flags, n *int64) {
		if f&flag != 0 {
			*n++
		}
	}
	count(session.FlagNoResponse, &l.NoResponse)
	count(session.FlagRequestGap, &l.RequestGaps)
	count(session.FlagResponseGap, &l.ResponseGaps)
	count(session.FlagRequestTruncated, &l.TruncatedRequests)
	count(session.FlagResponseTruncated, &l.TruncatedResponses)
	count(session.FlagRedacted, &l.Redacted)
	count(session.FlagRequestTruncated|session.FlagResponseTruncated, &l.Truncated)
	for _, w := range ex.Warnings {
		l.Warnings++
		bump(b.warnings, w, "(other warnings)", 1)
	}
}

// AddFile adds a file's final metadata, timelines and damage, once its
// reader has reached the end.
func (b *Builder) AddFile(f *File, r *session.Reader) {
	md := r.Metadata()
	st := r.Stats()
	f.Source, f.Filter, f.Host, f.Tool, f.MaxBody = md.Source, md.Filter, md.Host, md.Tool, md.MaxBody
	f.Finished = st.Finished
	b.AddCounters(md.Counters)
	b.s.Timelines += int(st.Timelines)
	b.addConns(r.Conns())
	d := &b.s.Damage
	d.Regions += st.Damaged
	d.SkippedBytes += st.SkippedBytes
	d.LostRecords += st.LostRecords
	d.TornTail = d.TornTail || st.TornTail
	if !st.Finished {
		d.Unfinished = append(d.Unfinished, f.Path)
	}
	for _, ce := range r.Damage() {
		d.Reports = append(d.Reports, Report{Path: ce.Path, Offset: ce.Offset, Skipped: ce.Skipped, Records: ce.Records, Error: ce.Error()})
	}
	d.Damaged = d.Regions > 0
}

// AddCounters adds what a capture or import counted of what it saw and
// lost: a recording's metadata counters (AddFile adds them), or a
// source's own when the exchanges were not read from a recording.
func (b *Builder) AddCounters(c session.Counters) {
	l := &b.s.Losses
	l.PacketsSeen += c.PacketsSeen
	l.PacketsDropped += c.PacketsDropped
	l.PacketsDuplicate += c.PacketsDuplicate
	l.PacketsMalformed += c.PacketsMalformed
	l.IncompleteCounted += c.Incomplete
	for k, v := range c.Unsupported {
		b.unsup[k] += v
	}
	b.addTLS(c.TLS)
}

// Summary returns the summary so far.
func (b *Builder) Summary() *Summary {
	s := b.s
	s.Files = append([]File{}, b.files...)
	if s.End > s.Start && s.Start != 0 {
		s.DurationSeconds = float64(s.End-s.Start) / 1e9
	}
	s.Rate = b.rate.chart(b.opt.ChartColumns, s.Start, s.End)
	s.Methods = sortedCounts(b.methods)
	s.TokenEvents = sortedCounts(b.tokens)
	s.Losses.TopWarnings = sortedCounts(b.warnings)
	if len(s.Losses.TopWarnings) > 10 {
		s.Losses.TopWarnings = s.Losses.TopWarnings[:10]
	}
	s.Losses.Unsupported = b.unsup
	s.TLS = b.tlsSummary()
	s.Connections = b.conns.summary()
	for st, n := range b.statuses {
		s.Statuses = append(s.Statuses, StatusCount{st, n})
	}
	sort.Slice(s.Statuses, func(i, j int) bool { return s.Statuses[i].Status < s.Statuses[j].Status })
	s.Sessions = int64(len(b.sessions))
	s.DistinctRoutes = len(b.routes)
	for k, rs := range b.routes {
		s.Routes = append(s.Routes, Route{Method: k.method, Route: k.route, Count: rs.count, Errors: rs.errors,
			MedianMS: math.Round(float64(rs.lat.quantile(0.5))/1e4) / 100})
	}
	sort.Slice(s.Routes, func(i, j int) bool {
		a, c := s.Routes[i], s.Routes[j]
		if a.Count != c.Count {
			return a.Count > c.Count
		}
		if a.Route != c.Route {
			return a.Route < c.Route
		}
		return a.Method < c.Method
	})
	if len(s.Routes) > b.opt.TopRoutes {
		s.Routes = s.Routes[:b.opt.TopRoutes]
	}
	if s.Routes == nil {
		s.Routes = []Route{}
	}
	if s.Statuses == nil {
		s.Statuses = []StatusCount{}
	}
	if s.Damage.Reports == nil {
		s.Damage.Reports = []Report{}
	}
	if s.Damage.Unfinished == nil {
		s.Damage.Unfinished = []string{}
	}
	return &s
}

func sortedCounts(m map[string]int64) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}
