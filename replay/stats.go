package replay

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// hist wraps an HDR histogram of microseconds from 1µs to 1h.
type hist struct{ h *hdrhistogram.Histogram }

func newHist() hist { return hist{hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)} }

func (h hist) record(d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < 1 {
		us = 1
	}
	_ = h.h.RecordValue(min(us, h.h.HighestTrackableValue()))
}

func (h hist) summary(full bool) Histogram {
	if h.h.TotalCount() == 0 {
		return Histogram{}
	}
	m := func(us int64) float64 { return float64(us) / 1000 }
	s := Histogram{
		Count: uint64(h.h.TotalCount()),
		Min:   m(h.h.Min()),
		Mean:  h.h.Mean() / 1000,
		P50:   m(h.h.ValueAtQuantile(50)),
		P90:   m(h.h.ValueAtQuantile(90)),
		P99:   m(h.h.ValueAtQuantile(99)),
		P999:  m(h.h.ValueAtQuantile(99.9)),
		Max:   m(h.h.Max()),
	}
	if full {
		if b, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err == nil {
			s.HDR = base64.StdEncoding.EncodeToString(b)
		}
	}
	return s
}

type routeStats struct {
	requests, errors uint64
	codes            codeCounts
	latency, service hist
}

// codeCounts counts responses by status code. A run sees a few codes, so
// a look along a short list is what a response costs, not a string key
// hashed into a map twice (the run's and its route's); the report's maps
// are made from it (see mapped).
type codeCounts []codeCount

type codeCount struct {
	status int
	n      uint64
}

func (c *codeCounts) add(status int) {
	for i := range *c {
		if (*c)[i].status == status {
			(*c)[i].n++
			return
		}
	}
	*c = append(*c, codeCount{status, 1})
}

// mapped returns the counts keyed as the report spells codes.
func (c codeCounts) mapped() map[string]uint64 {
	m := make(map[string]uint64, len(c))
	for _, cc := range c {
		m[statusText(cc.status)] += cc.n
	}
	return m
}

// stats gathers figures from many goroutines.
type stats struct {
	mu       sync.Mutex
	req      RequestCounts
	codes    codeCounts
	mismatch uint64
	errs     map[string]uint64
	// The run's latency and service time are its routes' merged (see
	// overall): every response is recorded in its route's histograms,
	// and recording it in the run's as well was two of the ten or so
	// histogram recordings of a response, each a likely cache miss in a
	// histogram of 190 KB.
	scratch   hist // overall's
	lag       hist
	orderWait hist
	routes    map[string]*routeStats
	// lastRoute and lastRS are the route of the result recorded last and
	// its figures: a worker's batch is mostly of one route or a few, and
	// a route's figures do not change for its name once made (see
	// routeOf), so a look-up of the name in routes is spared.
	lastRoute   string
	lastRS      *routeStats
	sessions    SessionCounts
	problems    []SessionProblem
	corr        CorrelationCounts
	filtered    FilterCounts
	first, last time.Time // first send and last completion
	lastSent    time.Time

	// Set as the run starts (startShard), before any request.
	shard     *ShardReport
	recording *RecordingID
	startAt   *time.Time
	startLate time.Duration

	// Counted once or more per request outside any other work under mu:
	// atomics, which fill and snapshot add in.
	scheduled, read, learned atomic.Uint64
}

func newStats() *stats {
	return &stats{
		errs:      make(map[string]uint64),
		scratch:   newHist(),
		lag:       newHist(),
		orderWait: newHist(),
		routes:    make(map[string]*routeStats),
	}
}

func (s *stats) record(r *Result) {
	s.mu.Lock()
	s.recordLocked(r)
	s.mu.Unlock()
}

// recordAll records a batch of results under one turn of the lock.
func (s *stats) recordAll(rs []Result) {
	s.mu.Lock()
	for i := range rs {
		s.recordLocked(&rs[i])
	}
	s.mu.Unlock()
}

func (s *stats) recordLocked(r *Result) {
	if r.Uncorrelated {
		s.req.Uncorrelated++
	}
	s.corr.Substituted += uint64(r.Substituted)
	if r.Skipped {
		s.req.Skipped++
		return
	}
	if r.Sent.IsZero() {
		s.req.NotSent++
		return
	}
	s.req.Sent++
	if s.first.IsZero() || r.Sent.Before(s.first) {
		s.first = r.Sent
	}
	if r.Done.After(s.last) {
		s.last = r.Done
	}
	if r.Sent.After(s.lastSent) {
		s.lastSent = r.Sent
	}
	rs := s.routeOf(r.Route)
	rs.requests++
	s.lag.record(r.Sent.Sub(r.Due))
	if w := r.Ready.Sub(r.Due); r.Blocked && w > 0 {
		s.orderWait.record(w)
	}
	if r.Err != nil {
		s.req.Errors++
		rs.errors++
		s.errs[r.ErrKind]++
		return
	}
	s.req.Responses++
	s.codes.add(r.Status)
	rs.codes.add(r.Status)
	if r.RecordedStatus != 0 && r.RecordedStatus != r.Status {
		s.mismatch++
	}
	rs.latency.record(r.Done.Sub(r.Due))
	rs.service.record(r.Done.Sub(r.Sent))
}

// routeOf returns the figures of route, made on its first result; past
// maxRoutes routes, a new one's go to "other". s.mu is held.
func (s *stats) routeOf(route string) *routeStats {
	if s.lastRS != nil && route == s.lastRoute {
		return s.lastRS
	}
	rs := s.routes[route]
	if rs == nil {
		name := route
		if len(s.routes) >= maxRoutes {
			name = "other"
		}
		if rs = s.routes[name]; rs == nil {
			rs = &routeStats{latency: newHist(), service: newHist()}
			s.routes[name] = rs
		}
	}
	s.lastRoute, s.lastRS = route, rs
	return rs
}

// statusTexts are the status codes as the figures' keys spell them:
// strconv.Itoa allocates for a number of three digits, once per response.
var statusTexts = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string {
	if code >= 0 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

func (s *stats) session(key, outcome, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions.Total++
	switch outcome {
	case "completed":
		s.sessions.Completed++
		return
	case "failed":
		s.sessions.Failed++
	case "uncorrelated":
		s.sessions.Uncorrelated++
	}
	if len(s.problems) < maxProblems {
		s.problems = append(s.problems, SessionProblem{Session: key, Outcome: outcome, Detail: detail})
	}
}

// fill copies the figures into rep.
func (s *stats) fill(rep *Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep.Requests = s.req
	rep.Requests.Scheduled = s.scheduled.Load()
	rep.StatusCodes = s.codes.mapped()
	rep.StatusMismatch = s.mismatch
	rep.Errors = maps(s.errs)
	rep.Latency = s.overall(func(rs *routeStats) hist { return rs.latency }).summary(true)
	rep.ServiceTime = s.overall(func(rs *routeStats) hist { return rs.service }).summary(true)
	rep.Lag = s.lag.summary(true)
	rep.OrderWait = s.orderWait.summary(true)
	rep.Routes = make([]RouteReport, 0, len(s.routes))
	for name, rs := range s.routes {
		rep.Routes = append(rep.Routes, RouteReport{
			Route: name, Requests: rs.requests, Errors: rs.errors, StatusCodes: rs.codes.mapped(),
			Latency: rs.latency.summary(true), ServiceTime: rs.service.summary(true),
		})
	}
	slices.SortFunc(rep.Routes, func(a, b RouteReport) int { return strings.Compare(a.Route, b.Route) })
	rep.Sessions = s.sessions
	rep.Problems = slices.Clone(s.problems)
	rep.Correlation = s.corr
	rep.Correlation.Learned = s.learned.Load()
	rep.Filtered = s.filtered
	rep.Filtered.Read = s.read.Load()
	rep.Shard, rep.Recording, rep.StartAt = s.shard, s.recording, s.startAt
	if s.startAt != nil {
		rep.StartLateMS = msf(s.startLate)
	}
}

// overall merges the routes' histograms that of picks into the scratch
// histogram and returns it, valid until the next call (or returns the one
// route's own); s.mu is held. The merge walks each route's recorded
// values only: once a second for the progress line, once for the report.
func (s *stats) overall(of func(*routeStats) hist) hist {
	if len(s.routes) == 1 {
		for _, rs := range s.routes {
			return of(rs) // the one route's are the run's
		}
	}
	s.scratch.h.Reset()
	for _, rs := range s.routes {
		s.scratch.h.Merge(of(rs).h)
	}
	return s.scratch
}

func maps(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Snapshot is a cheap view of a running replay, for progress lines.
type Snapshot struct {
	Elapsed   time.Duration
	Scheduled uint64
	Sent      uint64
	Errors    uint64
	Skipped   uint64
	InFlight  int64
	LagP99    time.Duration
	LatP99    time.Duration
}

func (s Snapshot) String() string {
	rps := 0.0
	if s.Elapsed > 0 {
		rps = float64(s.Sent) / s.Elapsed.Seconds()
	}
	return fmt.Sprintf("replay %6s  sent %d/%d  %.0f req/s  in flight %d  errors %d  skipped %d  p99 %v  lag p99 %v",
		s.Elapsed.Truncate(time.Second), s.Sent, s.Scheduled, rps, s.InFlight, s.Errors, s.Skipped,
		s.LatP99.Truncate(time.Microsecond), s.LagP99.Truncate(time.Microsecond))
}

func (s *stats) snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Snapshot{
		Scheduled: s.scheduled.Load(),
		Sent:      s.req.Sent,
		Errors:    s.req.Errors,
		Skipped:   s.req.Skipped,
		LagP99:    time.Duration(s.lag.h.ValueAtQuantile(99)) * time.Microsecond,
		LatP99:    time.Duration(s.overall(func(rs *routeStats) hist { return rs.latency }).h.ValueAtQuantile(99)) * time.Microsecond,
	}
}
