// Package corrplan computes a recording's correlation plan: which of the
// values its responses issued are carried back by later requests (the
// only ones a replay must learn from the live responses), and which
// values requests carry that no recorded response issued (unreplaced
// values, sent stale by a replay).
//
// A Builder reads the exchanges once, in the order they were written
// (a response is written before any request that could carry its values
// starts), and keeps per session only the distinctive values issued
// recently: its memory is bounded whatever the recording's length. The
// recording loop (capture.Record) runs one as it writes and stores the
// plan in the recording's metadata; a replay of an older recording runs
// one over the file before it starts.
//
// The places values are read from are those of package replay/correlate,
// which substitutes them: Fields lists a response's values by path, and
// a request's values are read where the substitution looks for them
// (path segments, query and form values, cookies, the Authorization
// credentials, whole header values, JSON leaves, and long token-like
// values inside other text).
package corrplan

import (
	"cmp"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// The Builder's bounds. maxPerSession is the replay's own bound on the
// values one session's table keeps (correlate's maxValues): a value the
// table would have let go of is not worth planning for either.
const (
	maxPerSession = 1024
	maxValues     = 1 << 18 // issued values held over all sessions
	maxSessions   = 1 << 12 // sessions held (the least recently active go first)
	maxRecent     = 1 << 14 // issued values matched across sessions
	maxRules      = 4096
	maxUnreplaced = 256
	maxScanBody   = 1 << 20 // request bodies read for carried values
	sweepEvery    = 4096    // exchanges between looks for idle sessions
	maxBodies     = 1024    // response bodies whose issued values are kept (see bodyIssued)
	maxBodyValues = 1 << 16 // values kept for them
	maxOrigins    = 1 << 14 // places values are issued at (and routes), interned
	bodyCacheFrom = 512     // bytes from which a body is worth it
)

// DefaultIdle is how long a session's issued values are kept after its
// last exchange, in recording time.
const DefaultIdle = 30 * time.Minute

// origin is where a value was issued: a route and a rule's field. The
// Builder interns them (see originOf): the values issued at one place share
// one.
type origin struct{ route, field string }

// vkey is a value as the Builder keeps it: its hash (maphash, the
// Builder's seed). Keeping 64 bits of each value rather than the value
// and its place made the survey of a recording of per-response ids a
// third of the replay's peak memory; two values of one recording sharing
// a hash is a chance of one in 2^64 per pair.
type vkey uint64

// sessionValues are the values one session's responses issued, newest
// kept.
type sessionValues struct {
	vals fifoValues
	last int64      // latest request start, Unix ns
	body issuedBody // the last cached body issued to vals
	// The sessions in the order of their last exchange (oldest first):
	// since the Builder's clock only goes forward, also in order of
	// last, which is the order sweep drops them in.
	older, newer *sessionValues
	key          sessionKey
}

// sessionKey is SessionKey without making a string of a connection's:
// conn when session is "", which no recorded session is.
type sessionKey struct {
	session string
	conn    uint64
}

// Builder computes a plan from exchanges handed to Add in the order they
// were written. It is not safe for concurrent use.
type Builder struct {
	idle           time.Duration
	sessions       map[sessionKey]*sessionValues
	oldest, newest *sessionValues
	total          int                      // values held over all sessions
	recent         fifoValues               // the last maxRecent values issued to any session
	recentBody     issuedBody               // the last cached body issued to recent
	routes         map[string]*routeOrigins // see originOf
	nOrigins       int
	originsGen     uint64
	routeMemo      [routeMemoSize]routeMemo
	rules          map[session.CorrelationRule]struct{}
	unrepl         map[unreplacedKey]*session.UnreplacedValue
	n              uint64
	forgotten      uint64
	all            bool
	now            int64
	bodies         map[uint64]*bodyValues // see bodyIssued
	bodyVals       int                    // values held in bodies
	bodyVers       uint64                 // the last bodyValues.ver given
	seed           maphash.Seed
	scan           leafScanner // reused: its path and key buffers
	isink          issueSink
	csink          carrySink
	issuedBuf      []issued
	hdrIssued      []issued
	hdrs           []headerField
	fieldBuf       []byte
	reqLeaves      []carriedLeaf
	reqPaths       []byte
	// Tests: read each exchange another way (addHook), drop sessions by
	// another ordering (sweepHook).
	addHook   func(b *Builder, ex *session.Exchange, sv *sessionValues, ro *routeOrigins)
	sweepHook func(*Builder)
}

// routeOrigins are the origins of one route, by field.
type routeOrigins struct {
	route  string
	fields map[string]*origin
}

// routeMemo remembers a request target's route (session.Route builds a
// string each time): most recordings ask for a few targets many times.
type routeMemo struct {
	method, target string
	ro             *routeOrigins
	gen            uint64
}

const (
	routeMemoSize = 64
	maxMemoTarget = 256 // longer targets are not remembered
)

// unreplacedKey is an unreplaced value's route and place, the place as
// its kind and name.
type unreplacedKey struct{ route, kind, name string }

// NewBuilder returns a Builder that keeps a session's values for idle
// after its last exchange (DefaultIdle when 0).
func NewBuilder(idle time.Duration) *Builder {
	if idle <= 0 {
		idle = DefaultIdle
	}
	return &Builder{
		idle:     idle,
		sessions: make(map[sessionKey]*sessionValues),
		routes:   make(map[string]*routeOrigins),
		rules:    make(map[session.CorrelationRule]struct{}),
		unrepl:   make(map[unreplacedKey]*session.UnreplacedValue),
		bodies:   make(map[uint64]*bodyValues),
		seed:     maphash.MakeSeed(),
	}
}

// SessionKey is the session an exchange belongs to for the plan: its
// recorded session, else its connection (as the replay's schedule keys
// it). Values are also matched across sessions over the last few
// thousand issued, so a replay that keys sessions otherwise
// (--session-keys recompute) still finds its rules in the plan.
func SessionKey(ex *session.Exchange) string {
	if ex.Session != "" {
		return ex.Session
	}
	return "conn:" + strconv.FormatUint(ex.Conn.ID, 10)
}

// sessionKeyOf is SessionKey(ex) as a sessionKey: two exchanges have one
// exactly when their SessionKeys are equal.
func sessionKeyOf(ex *session.Exchange) sessionKey {
	if rest, ok := strings.CutPrefix(ex.Session, "conn:"); ok {
		// A recorded session named as a connection's key is that key.
		if id, err := strconv.ParseUint(rest, 10, 64); err == nil && strconv.FormatUint(id, 10) == rest {
			return sessionKey{conn: id}
		}
	}
	if ex.Session != "" {
		return sessionKey{session: ex.Session}
	}
	return sessionKey{conn: ex.Conn.ID}
}

// Add reads one exchange: first the values its request carries (issued,
// if at all, by earlier responses), then those its response issues.
func (b *Builder) Add(ex *session.Exchange) {
	b.n++
	if t := ex.Timing.RequestStart; t > b.now {
		b.now = t
	}
	key := sessionKeyOf(ex)
	sv := b.sessions[key]
	if sv == nil {
		// A clone: the key may share the decoded block of the recording.
		key.session = strings.Clone(key.session)
		sv = &sessionValues{key: key}
		b.sessions[key] = sv
	}
	sv.last = b.now
	b.touch(sv)
	if len(b.sessions) > maxSessions {
		b.sweep()
	}
	ro := b.routeOf(ex.Request.Method, ex.Request.Target)
	if b.addHook != nil {
		b.addHook(b, ex, sv, ro)
	} else {
		c := carried{b: b, sv: sv, route: ro.route}
		c.request(&ex.Request)
		if ex.Flags&session.FlagNoResponse == 0 && (len(ex.Response.Header) > 0 || len(ex.Response.Body) > 0) {
			b.responseIssued(sv, ro, &ex.Response)
		}
	}
	if b.n%sweepEvery == 0 {
		b.sweep()
	}
}

// touch makes sv the session most recently active.
func (b *Builder) touch(sv *sessionValues) {
	if b.newest == sv {
		return
	}
	b.unlink(sv)
	sv.older, b.newest = b.newest, sv
	if sv.older != nil {
		sv.older.newer = sv
	}
	if b.oldest == nil {
		b.oldest = sv
	}
}

func (b *Builder) unlink(sv *sessionValues) {
	if sv.older != nil {
		sv.older.newer = sv.newer
	} else if b.oldest == sv {
		b.oldest = sv.newer
	}
	if sv.newer != nil {
		sv.newer.older = sv.older
	} else if b.newest == sv {
		b.newest = sv.older
	}
	sv.older, sv.newer = nil, nil
}

// key is v as the Builder keeps it.
func (b *Builder) key(v string) vkey { return vkey(maphash.String(b.seed, v)) }

// keyOf is key for a value read in place.
func keyOf[T text](b *Builder, v T) vkey {
	switch v := any(v).(type) {
	case []byte:
		return vkey(maphash.Bytes(b.seed, v))
	case string:
		return vkey(maphash.String(b.seed, v))
	}
	return vkey(maphash.String(b.seed, string(v)))
}

// routeOf returns the origins of the route of a request (session.Route).
func (b *Builder) routeOf(method, target string) *routeOrigins {
	var m *routeMemo
	if len(target) <= maxMemoTarget {
		h := len(target)
		if len(target) > 0 {
			h = h*31 + int(target[len(target)-1])*7 + int(target[len(target)/2])
		}
		m = &b.routeMemo[h%routeMemoSize]
		if m.ro != nil && m.gen == b.originsGen && m.target == target && m.method == method {
			return m.ro
		}
	}
	route := session.Route(method, target)
	ro := b.routes[route]
	if ro == nil {
		if len(b.routes) >= maxOrigins {
			b.forgetOrigins()
		}
		ro = &routeOrigins{route: route}
		b.routes[route] = ro
	}
	// A target that is its own route's path (no query, no id) is
	// remembered: the route holds its copy. Others (each order's id)
	// would only crowd the memo.
	if n := len(method) + 1; m != nil && len(route) == n+len(target) && route[n:] == target {
		*m = routeMemo{method: route[:n-1], target: route[n:], ro: ro, gen: b.originsGen}
	}
	return ro
}

// forgetOrigins starts the table of origins afresh: the origins values
// hold stay valid, merely no longer shared with those issued after.
func (b *Builder) forgetOrigins() {
	clear(b.routes)
	b.nOrigins = 0
	b.originsGen++ // the memo's routes are to be found again
}

// originOf returns the one origin of ro's route and field. The table is
// bounded: past maxOrigins it starts afresh (see forgetOrigins).
func originOf[T text](b *Builder, ro *routeOrigins, field T) *origin {
	if o := ro.fields[string(field)]; o != nil {
		return o
	}
	if b.nOrigins >= maxOrigins {
		b.forgetOrigins()
		ro.fields = nil
		b.routes[ro.route] = ro
	}
	if ro.fields == nil {
		ro.fields = make(map[string]*origin)
	}
	o := &origin{ro.route, string(field)}
	ro.fields[o.field] = o
	b.nOrigins++
	return o
}

// issue keeps a value the session's response issued.
func (b *Builder) issue(sv *sessionValues, v vkey, o *origin) { b.issueTo(sv, v, o, true, true) }

// issueTo is issue, to the session's values and the recent ones or not.
func (b *Builder) issueTo(sv *sessionValues, v vkey, o *origin, toSession, toRecent bool) {
	if toSession {
		if sv.vals.put(v, o) {
			b.total++
		}
		for sv.vals.len() > maxPerSession {
			sv.vals.evict()
			b.total--
			b.forgotten++
		}
	}
	if toRecent {
		b.recent.put(v, o)
		if b.recent.len() > maxRecent {
			b.recent.evict()
		}
	}
	if b.total > maxValues {
		b.sweep()
	}
}

// issuedBody notes the last cached body whose values were issued to a
// table, by the body's version and the table's just after: while both
// are unchanged, issuing the body again would change nothing (its values
// are there at the origins it would set), and is skipped. A session
// fetching one large file over and over is then read as cheaply as the
// file is parsed once (see bodyIssued). The body's version names it
// (no two bodies share one), so that a session does not keep a body the
// cache has let go of.
type issuedBody struct{ bodyVer, tabVer uint64 }

func (ib *issuedBody) holds(bv *bodyValues, tab *fifoValues) bool {
	return bv != nil && ib.bodyVer == bv.ver && ib.tabVer == tab.ver
}

// issuedAfter is the issuedBody of bv issued to tab, which had let go of
// evicted values before: none when tab let go of any since, as one may
// be of bv's, which issuing again would then put back.
func issuedAfter(bv *bodyValues, tab *fifoValues, evicted uint64) issuedBody {
	if bv == nil || tab.evictions != evicted {
		return issuedBody{}
	}
	return issuedBody{bv.ver, tab.ver}
}

// issueBody issues the values of a body (bv when cached, else nil).
func (b *Builder) issueBody(sv *sessionValues, list []issued, bv *bodyValues) {
	toSession, toRecent := !sv.body.holds(bv, &sv.vals), !b.recentBody.holds(bv, &b.recent)
	if !toSession && !toRecent {
		return
	}
	sEv, rEv := sv.vals.evictions, b.recent.evictions
	for _, is := range list {
		b.issueTo(sv, is.key, is.o, toSession, toRecent)
	}
	if toSession {
		sv.body = issuedAfter(bv, &sv.vals, sEv)
	}
	if toRecent {
		b.recentBody = issuedAfter(bv, &b.recent, rEv)
	}
}

// sweep drops sessions idle for longer than the idle time and, while the
// values or the sessions held exceed their bounds, the least recently
// active sessions (a recording proxy's tracker may start a session at
// every login; values carried across sessions are still matched among
// the recent ones).
func (b *Builder) sweep() {
	if b.sweepHook != nil {
		b.sweepHook(b)
		return
	}
	cutoff := b.now - int64(b.idle)
	for b.oldest != nil && b.oldest.last < cutoff {
		b.drop(b.oldest)
	}
	if b.total <= maxValues && len(b.sessions) <= maxSessions {
		return
	}
	for sv := b.oldest; sv != nil && (b.total > maxValues*3/4 || len(b.sessions) > maxSessions*3/4); sv = b.oldest {
		b.forgotten += uint64(sv.vals.len()) // active sessions, not idle ones: their values may yet be carried
		b.drop(sv)
	}
}

func (b *Builder) drop(sv *sessionValues) {
	b.total -= sv.vals.len()
	delete(b.sessions, sv.key)
	b.unlink(sv)
}

// lookup returns where v was issued: by the session, else recently by any.
func lookup[T text](b *Builder, sv *sessionValues, v T) (*origin, bool) {
	k := keyOf(b, v)
	if o, ok := sv.vals.get(k); ok {
		return o, true
	}
	return b.recent.get(k)
}

// rule notes that a value issued at o was carried back.
func (b *Builder) rule(o *origin) {
	if b.all {
		return
	}
	b.rules[session.CorrelationRule{Route: o.route, Field: o.field}] = struct{}{}
	if len(b.rules) > maxRules {
		b.all, b.rules = true, nil
	}
}

// unreplaced counts a request of route carrying v at the place of kind
// and name (kind + ":" + name), issued by no response the Builder holds.
func (b *Builder) unreplaced(route, kind, name, v string) {
	k := unreplacedKey{route, kind, name}
	u := b.unrepl[k]
	if u == nil {
		if len(b.unrepl) >= maxUnreplaced {
			return
		}
		place := kind
		if kind != "path" {
			place += ":" + name
		}
		u = &session.UnreplacedValue{Route: route, Place: place, Example: Example(v)}
		b.unrepl[k] = u
	}
	u.Requests++
}

// Example shows the start of a value and its length, enough to recognise
// it and never the whole of a secret.
func Example(v string) string {
	n := min(4, len(v)/3)
	return v[:n] + "…(" + strconv.Itoa(len(v)) + " chars)"
}

// Plan returns the plan so far; the Builder may go on reading.
func (b *Builder) Plan() *session.CorrelationPlan {
	p := &session.CorrelationPlan{Exchanges: b.n, Forgotten: b.forgotten, All: b.all, Rules: []session.CorrelationRule{}}
	for r := range b.rules {
		p.Rules = append(p.Rules, r)
	}
	slices.SortFunc(p.Rules, func(x, y session.CorrelationRule) int {
		return cmp.Or(cmp.Compare(x.Route, y.Route), cmp.Compare(x.Field, y.Field))
	})
	for _, u := range b.unrepl {
		p.Unreplaced = append(p.Unreplaced, *u)
	}
	slices.SortFunc(p.Unreplaced, func(x, y session.UnreplacedValue) int {
		return cmp.Or(cmp.Compare(y.Requests, x.Requests), cmp.Compare(x.Route, y.Route), cmp.Compare(x.Place, y.Place))
	})
	return p
}

// Generalize writes a field path's array indices as [*], so that one
// rule covers every element: "json:.items[3].id" -> "json:.items[*].id".
func Generalize(path string) string {
	if !strings.Contains(path, "[") {
		return path
	}
	return string(appendGeneralized(nil, path))
}

// appendGeneralized appends Generalize(path) to dst.
func appendGeneralized[T text](dst []byte, path T) []byte {
	for i := 0; i < len(path); i++ {
		dst = append(dst, path[i])
		if path[i] != '[' {
			continue
		}
		j := i + 1
		for j < len(path) && path[j] >= '0' && path[j] <= '9' {
			j++
		}
		if j > i+1 && j < len(path) && path[j] == ']' {
			dst = append(dst, '*')
			i = j - 1
		}
	}
	return dst
}
