package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/replay/schedule"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// reqFlags say what an exchange did to its session's tokens.
type reqFlags uint8

const (
	flagRefresh  reqFlags = 1 << iota // a refresh (grant_type=refresh_token or the like)
	flagReactive                      // a refresh made after a 401
	flagRejected                      // the recorded server answered 401 (refused a token)
	flagAuth                          // a login, refresh or logout: not a use of the access token
	flagNoResp                        // never answered in the recording
	flagKept                          // passes the plan's filters
)

// Request is one recorded request as the check needs it: when it started,
// how long the server took, whose it was and what it did to tokens.
// Memory is about 40 bytes a request.
type Request struct {
	Offset   time.Duration // start, since the recording's first request
	Duration time.Duration // start to the response's last byte; 0 without one
	// TTL is the lifetime of the access token this exchange was issued
	// (a login or a refresh answered with an expiry), 0 when none.
	TTL     time.Duration
	Session int32 // index into Recording.Sessions
	Route   int32 // index into Recording.Routes
	flags   reqFlags
}

// Refresh reports whether the request refreshed its session's tokens.
func (r *Request) Refresh() bool { return r.flags&flagRefresh != 0 }

// Kept reports whether the request passes the plan's filters.
func (r *Request) Kept() bool { return r.flags&flagKept != 0 }

// Recording is what the check knows of a recording: every request in
// order of start, with sessions as the replay will see them (picked by
// LoadOptions.Keys with the replay's rule) and routes named as replay reports name them (replay.Route).
type Recording struct {
	Paths    []string
	Origin   int64         // first request start, Unix ns
	Span     time.Duration // first to last request start
	Requests []Request
	Sessions []string // keys, by index
	Routes   []string // names, by index
	// SessionsFrom says where sessions came from: "recording" (stored at
	// capture), "recomputed" (the identity tracker over the exchanges) or
	// "connections" (asked for, or none recorded: one session per
	// connection, as replay does then).
	SessionsFrom string
	// Damaged counts damaged regions skipped while reading; their
	// exchanges are missing.
	Damaged int
	// Filter is the filter applied (see Kept); Dropped counts the
	// requests it left out.
	Filter  Filter
	Dropped int
	// after holds the order rule's data edges the recorded clocks
	// contradict: request index -> the requests whose issued values it
	// carries (see builder.carries).
	after   map[int32][]int32
	issuers map[int32]bool // the requests after or lineAfter point at
	// lineAfter holds, for a request of an HTTP/1 connection that a
	// request of another session used before it (not pipelined behind
	// it), that earlier request: replaying connections as recorded, the
	// engine sends it only once that one's response is in. Within a
	// session the order rule already makes it wait.
	lineAfter map[int32]int32
}

// Filter is the request selection of a replay plan, as replay's
// WithIncludePath, WithExcludePath, WithMethods, WithRange and
// WithSessions apply it.
type Filter struct {
	Include  []string      // regular expressions over the request-target
	Exclude  []string      // regular expressions over the request-target
	Methods  []string      // e.g. GET, POST
	From, To time.Duration // offsets into the recording; To 0 means the end
	Sessions int           // the first N sessions only; 0 means all
}

// LoadOptions configure Load and Build.
type LoadOptions struct {
	Filter Filter
	// Keys says where sessions come from, as replay's --session-keys
	// does: Load resolves it with session.SessionKeys.Resolve over the
	// recordings' metadata and applies it with identity.WithSessionKeys,
	// the very calls the replay run makes, so check predicts the sessions
	// the replay plays. "" is session.KeysAuto.
	Keys session.SessionKeys
	// Tracker are the identity tracker's options when sessions are
	// recomputed.
	Tracker []identity.Option
}

// compiled is a Filter ready to use.
type compiled struct {
	include, exclude []*regexp.Regexp
	methods          map[string]bool
}

func (f Filter) compile() (*compiled, error) {
	c := &compiled{}
	for _, e := range f.Include {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("include path %q: %w", e, err)
		}
		c.include = append(c.include, re)
	}
	for _, e := range f.Exclude {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("exclude path %q: %w", e, err)
		}
		c.exclude = append(c.exclude, re)
	}
	for _, m := range f.Methods {
		for _, p := range strings.Split(m, ",") {
			if p = strings.TrimSpace(p); p != "" {
				if c.methods == nil {
					c.methods = map[string]bool{}
				}
				c.methods[strings.ToUpper(p)] = true
			}
		}
	}
	if f.From < 0 || f.To < 0 || (f.To != 0 && f.To <= f.From) {
		return nil, fmt.Errorf("range %v-%v: want 0 <= from < to", f.From, f.To)
	}
	if f.Sessions < 0 {
		return nil, fmt.Errorf("sessions %d: want 0 (all) or more", f.Sessions)
	}
	return c, nil
}

func (c *compiled) keep(method, target string) bool {
	if c.methods != nil && !c.methods[strings.ToUpper(method)] {
		return false
	}
	for _, re := range c.exclude {
		if re.MatchString(target) {
			return false
		}
	}
	if len(c.include) == 0 {
		return true
	}
	for _, re := range c.include {
		if re.MatchString(target) {
			return true
		}
	}
	return false
}

// Load reads the recordings at paths (file names or globs, merged in time
// order as session.Open does) with the sessions o.Keys asks for: with
// KeysAuto, the recorded ones when a capture tracked sessions into the
// recordings (their metadata lists SessionRules), else the identity
// tracker's over the exchanges, as 'reprise inspect --sessions' shows
// them, so refreshes and token lifetimes are known. Damaged regions are
// skipped and counted, never fatal.
func Load(ctx context.Context, paths []string, o LoadOptions) (*Recording, error) {
	if _, err := o.Filter.compile(); err != nil {
		return nil, err
	}
	if err := checkKeys(o.Keys); err != nil {
		return nil, err
	}
	mr, err := session.Open(paths...)
	if err != nil {
		return nil, err
	}
	defer mr.Close()
	keys := o.Keys.Resolve(mr.Metadata())
	src, err := identity.WithSessionKeys(keys, mr.Metadata(), mr, o.Tracker...)
	if err != nil {
		return nil, err
	}
	b, err := newBuilder(o, keys)
	if err != nil {
		return nil, err
	}
	b.rec.Paths = mr.Paths()
	for n := 0; ; n++ {
		x, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var ce *session.CorruptError
		if errors.As(err, &ce) {
			b.rec.Damaged++
			continue
		}
		if err != nil {
			return nil, err
		}
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		b.add(x)
	}
	b.stored = len(mr.Timelines()) > 0
	return b.finish(), nil
}

// checkKeys refuses a session-keys value replay would refuse.
func checkKeys(k session.SessionKeys) error {
	if k == "" {
		return nil
	}
	_, err := session.ParseSessionKeys(string(k))
	return err
}

// Build makes a Recording from any source of exchanges (a proxy, a
// capture, a slice in a test). A bare source has no metadata to resolve
// KeysAuto against, so, as when the engine is handed a source, its
// exchanges keep their own sessions unless o.Keys asks for recompute or
// connection.
func Build(src session.Source, o LoadOptions) (*Recording, error) {
	if err := checkKeys(o.Keys); err != nil {
		return nil, err
	}
	keys := o.Keys
	if keys == "" || keys == session.KeysAuto {
		keys = session.KeysRecorded
	}
	b, err := newBuilder(o, keys)
	if err != nil {
		return nil, err
	}
	if src, err = identity.WithSessionKeys(keys, nil, src, o.Tracker...); err != nil {
		return nil, err
	}
	for {
		x, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		b.add(x)
	}
	return b.finish(), nil
}

type builder struct {
	rec      *Recording
	f        *compiled
	starts   []int64 // absolute starts, parallel to rec.Requests
	sessions map[string]int32
	routes   map[string]int32
	issuers  map[int32][]*issuer // by session: recent responses that issued values
	edges    [][2]int32          // data edges (issuer, dependent), before sorting
	lines    map[uint64]linePrev // by recorded connection: its latest request
	recent   []*issuer           // the latest responses of any session that issued long values
	scratch  []*issuer
	lineDeps [][2]int32          // connection edges (earlier, later), before sorting
	keys     session.SessionKeys // resolved: recorded, recompute or connection
	named    bool                // some exchange carried a session
	stored   bool                // the recording stores timelines
}

func newBuilder(o LoadOptions, keys session.SessionKeys) (*builder, error) {
	f, err := o.Filter.compile()
	if err != nil {
		return nil, err
	}
	return &builder{rec: &Recording{Filter: o.Filter}, keys: keys, f: f, sessions: map[string]int32{}, routes: map[string]int32{}, issuers: map[int32][]*issuer{}, lines: map[uint64]linePrev{}}, nil
}

func (b *builder) add(x *session.Exchange) {
	req := &x.Request
	if req.Method == "" || req.Target == "" || req.Target == "*" {
		return // replay cannot send it either
	}
	if x.Session != "" {
		b.named = true
	}
	key := schedule.SessionKey(x) // replay's rule
	si, ok := b.sessions[key]
	if !ok {
		si = int32(len(b.rec.Sessions))
		b.sessions[key] = si
		b.rec.Sessions = append(b.rec.Sessions, key)
	}
	route := session.Route(req.Method, req.Target)
	ri, ok := b.routes[route]
	if !ok {
		ri = int32(len(b.rec.Routes))
		b.routes[route] = ri
		b.rec.Routes = append(b.rec.Routes, route)
	}
	r := Request{Session: si, Route: ri}
	start := x.Timing.RequestStart
	if end := schedule.RecordedEnd(x); end != 0 && start != 0 && end >= start {
		r.Duration = time.Duration(end - start)
	} else if end == 0 {
		r.flags |= flagNoResp
	}
	issued := schedule.RecordedEnd(x)
	for _, ev := range x.Tokens {
		switch ev.Kind {
		case session.TokenRefresh:
			r.flags |= flagRefresh | flagAuth
			if !ev.Proactive {
				r.flags |= flagReactive
			}
		case session.TokenLogin, session.TokenLogout:
			r.flags |= flagAuth
		case session.TokenRejected:
			r.flags |= flagRejected
		}
		switch ev.Kind {
		case session.TokenLogin, session.TokenRefresh, session.TokenIssue:
			if ev.ExpiresAt > issued && issued != 0 && !strings.Contains(ev.Name, "refresh") {
				ttl := time.Duration(ev.ExpiresAt - issued)
				if r.TTL == 0 || ttl < r.TTL {
					r.TTL = ttl
				}
			}
		}
	}
	if x.Response.Status == 401 && x.Flags&session.FlagNoResponse == 0 {
		r.flags |= flagRejected // replay's rule for a rejected request
	}
	if b.f.keep(req.Method, req.Target) {
		r.flags |= flagKept
	}
	b.carries(si, x, start)
	b.onLine(si, x, start)
	b.rec.Requests = append(b.rec.Requests, r)
	b.starts = append(b.starts, start)
}

// maxIssuers bounds the recent responses per session whose issued values
// the data edge looks for (see carries).
const maxIssuers = 8

// issuer is a recent response of a session that issued values.
type issuer struct {
	index   int32 // into the builder's requests, before sorting
	session int32
	order   schedule.Order
}

// maxRunIssuers bounds the recent responses of any session whose issued
// values other sessions' requests are looked at for (see carries).
const maxRunIssuers = 16

func (i *issuer) Order() *schedule.Order { return &i.order }

// carries finds the order rule's data edges of request x (the next one
// added), as the engine finds them (schedule.Carrying): a request that
// carries a value an earlier response of its session issued waits for
// that response, whatever the timestamps say. Only the edges the clocks
// contradict are kept, those whose response ended after x started: the
// time rule already holds the others. A recording is written in
// completion order, so the response x depends on was read before x; the
// last maxIssuers responses of each session that issued values are kept
// to look in.
func (b *builder) carries(si int32, x *session.Exchange, start int64) {
	idx := int32(len(b.rec.Requests))
	var deps []*issuer
	if prev := b.issuers[si]; len(prev) > 0 {
		deps = schedule.Carrying(deps, prev, &x.Request)
		for _, d := range deps {
			if d.order.End > start && start != 0 {
				b.edges = append(b.edges, [2]int32{d.index, idx})
			}
		}
	}
	// Another session's value: no time rule holds the two apart at
	// speed, so the edge is kept whatever the clocks say.
	n := len(deps)
	for _, d := range schedule.Carrying(deps, b.others(si), &x.Request)[n:] {
		b.edges = append(b.edges, [2]int32{d.index, idx})
	}
	if x.Flags&session.FlagNoResponse != 0 || (len(x.Response.Body) == 0 && len(x.Response.Header) == 0) {
		return
	}
	vals := correlate.IssuedFields(correlate.Fields(&x.Response))
	if len(vals) == 0 {
		return
	}
	is := &issuer{index: idx, session: si, order: schedule.Order{Start: start, End: schedule.RecordedEnd(x), Issued: vals}}
	list := append(b.issuers[si], is)
	if len(list) > maxIssuers {
		list = list[len(list)-maxIssuers:]
	}
	b.issuers[si] = list
	// Values of correlate.MinShared characters or more are live in
	// other sessions too (the engine's run table): a token a browser's
	// login issued on one connection is carried on the others.
	var long []string
	for _, v := range vals {
		if len(v) >= correlate.MinShared {
			long = append(long, v)
		}
	}
	if len(long) > 0 {
		sh := *is
		sh.order.Issued = long
		b.recent = append(b.recent, &sh)
		if len(b.recent) > maxRunIssuers {
			b.recent = slices.Delete(b.recent, 0, len(b.recent)-maxRunIssuers)
		}
	}
}

// others returns the recent issuers of sessions other than si.
func (b *builder) others(si int32) []*issuer {
	b.scratch = b.scratch[:0]
	for _, is := range b.recent {
		if is.session != si {
			b.scratch = append(b.scratch, is)
		}
	}
	return b.scratch
}

// linePrev is the latest request read of a recorded connection.
type linePrev struct {
	index   int32 // into the builder's requests, before sorting
	session int32
	began   int64 // its response's first byte (or end); 0: no response
}

// onLine finds the connection edge of request x (the next one added), as
// the engine orders a recorded connection's requests (replay's line): x
// waits for the request before it on its connection unless x was
// pipelined behind it (sent before its response began), the connection
// is HTTP/2 (its streams wait for no other), or both are of one session
// (the order rule holds them already).
func (b *builder) onLine(si int32, x *session.Exchange, start int64) {
	id := x.Conn.ID
	if id == 0 || x.Conn.Protocol.IsHTTP2() {
		return
	}
	idx := int32(len(b.rec.Requests))
	if p, ok := b.lines[id]; ok && p.session != si && p.began != 0 && start >= p.began {
		b.lineDeps = append(b.lineDeps, [2]int32{p.index, idx})
	}
	began := x.Timing.ResponseStart
	if began == 0 {
		began = schedule.RecordedEnd(x)
	}
	if x.Flags&session.FlagNoResponse != 0 {
		began = 0
	}
	b.lines[id] = linePrev{index: idx, session: si, began: began}
}

// finish sorts by start, sets offsets and applies the range and session
// sample of the filter.
func (b *builder) finish() *Recording {
	rec := b.rec
	switch {
	case b.keys == session.KeysRecompute:
		rec.SessionsFrom = "recomputed"
	case b.keys == session.KeysConnection:
		rec.SessionsFrom = "connections"
	case b.named || b.stored:
		rec.SessionsFrom = "recording"
	default:
		rec.SessionsFrom = "connections"
	}
	n := len(rec.Requests)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	// A request without timing sits at the latest start read before it,
	// as replay places it.
	var last int64
	for i, s := range b.starts {
		if s == 0 {
			b.starts[i] = last
		} else if s > last {
			last = s
		}
	}
	slices.SortStableFunc(idx, func(i, j int) int { return cmp.Compare(b.starts[i], b.starts[j]) })
	reqs := make([]Request, n)
	for k, i := range idx {
		reqs[k] = rec.Requests[i]
		if k == 0 {
			rec.Origin = b.starts[i]
		}
		reqs[k].Offset = time.Duration(b.starts[i] - rec.Origin)
	}
	rec.Requests = reqs
	at := make([]int32, n) // new index by old
	for k, i := range idx {
		at[i] = int32(k)
	}
	if len(b.edges) > 0 {
		rec.after = make(map[int32][]int32, len(b.edges))
		rec.issuers = make(map[int32]bool)
		for _, e := range b.edges {
			rec.after[at[e[1]]] = append(rec.after[at[e[1]]], at[e[0]])
			rec.issuers[at[e[0]]] = true
		}
	}
	if len(b.lineDeps) > 0 {
		if rec.issuers == nil {
			rec.issuers = make(map[int32]bool)
		}
		rec.lineAfter = make(map[int32]int32, len(b.lineDeps))
		for _, e := range b.lineDeps {
			rec.lineAfter[at[e[1]]] = at[e[0]]
			rec.issuers[at[e[0]]] = true
		}
	}
	if n > 0 {
		rec.Span = reqs[n-1].Offset
	}
	f := rec.Filter
	sampled := map[int32]bool{}
	for i := range reqs {
		r := &reqs[i]
		if r.flags&flagKept == 0 {
			rec.Dropped++
			continue
		}
		if r.Offset < f.From || (f.To != 0 && r.Offset > f.To) {
			r.flags &^= flagKept
			rec.Dropped++
			continue
		}
		if f.Sessions > 0 && !sampled[r.Session] {
			if len(sampled) >= f.Sessions {
				r.flags &^= flagKept
				rec.Dropped++
				continue
			}
			sampled[r.Session] = true
		}
	}
	return rec
}

// issuesTo reports whether a data edge points at request i.
func (rec *Recording) issuesTo(i int32) bool { return rec.issuers[i] }

// RouteCounts returns the recording's requests by route (all of them, the
// filter notwithstanding).
func (rec *Recording) RouteCounts() map[string]float64 {
	out := make(map[string]float64, len(rec.Routes))
	for i := range rec.Requests {
		out[rec.Routes[rec.Requests[i].Route]]++
	}
	return out
}
