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
	"encoding/json"
	"hash/maphash"
	"net/http"
	"net/url"
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
	maxOrigins    = 1 << 14 // places values are issued at, interned
	bodyCacheFrom = 512     // bytes from which a body is worth it
)

// DefaultIdle is how long a session's issued values are kept after its
// last exchange, in recording time.
const DefaultIdle = 30 * time.Minute

// origin is where a value was issued: a route and a rule's field. The
// Builder interns them (see intern): the values issued at one place share
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
	vals  map[vkey]*origin
	order []vkey // insertion order of vals, for eviction
	last  int64  // latest request start, Unix ns
}

// Builder computes a plan from exchanges handed to Add in the order they
// were written. It is not safe for concurrent use.
type Builder struct {
	idle      time.Duration
	sessions  map[string]*sessionValues
	total     int // values held over all sessions
	recent    map[vkey]*origin
	recentQ   []vkey
	origins   map[origin]*origin // see intern
	rules     map[session.CorrelationRule]struct{}
	unrepl    map[[2]string]*session.UnreplacedValue
	n         uint64
	forgotten uint64
	all       bool
	now       int64
	bodies    map[uint64][]issued // see bodyIssued
	bodyVals  int                 // values held in bodies
	seed      maphash.Seed
}

// issued is a distinctive value a response's body issued, at its rule's
// field (Generalize).
type issued struct {
	key   vkey
	field string
}

// NewBuilder returns a Builder that keeps a session's values for idle
// after its last exchange (DefaultIdle when 0).
func NewBuilder(idle time.Duration) *Builder {
	if idle <= 0 {
		idle = DefaultIdle
	}
	return &Builder{
		idle:     idle,
		sessions: make(map[string]*sessionValues),
		recent:   make(map[vkey]*origin),
		origins:  make(map[origin]*origin),
		rules:    make(map[session.CorrelationRule]struct{}),
		unrepl:   make(map[[2]string]*session.UnreplacedValue),
		bodies:   make(map[uint64][]issued),
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

// Add reads one exchange: first the values its request carries (issued,
// if at all, by earlier responses), then those its response issues.
func (b *Builder) Add(ex *session.Exchange) {
	b.n++
	if t := ex.Timing.RequestStart; t > b.now {
		b.now = t
	}
	key := SessionKey(ex)
	sv := b.sessions[key]
	if sv == nil {
		sv = &sessionValues{vals: make(map[vkey]*origin)}
		// A clone: the key may share the decoded block of the recording.
		b.sessions[strings.Clone(key)] = sv
	}
	sv.last = b.now
	if len(b.sessions) > maxSessions {
		b.sweep()
	}
	route := session.Route(ex.Request.Method, ex.Request.Target)
	c := carried{b: b, sv: sv, route: route}
	c.request(&ex.Request)
	if ex.Flags&session.FlagNoResponse == 0 && (len(ex.Response.Header) > 0 || len(ex.Response.Body) > 0) {
		var hf fieldSet
		headerFields(&ex.Response, &hf)
		for path, f := range hf.m {
			if Distinctive(path, f.Value) {
				b.issue(sv, b.key(f.Value), b.intern(route, Generalize(path)))
			}
		}
		for _, is := range b.bodyIssued(&ex.Response) {
			b.issue(sv, is.key, b.intern(route, is.field))
		}
	}
	if b.n%sweepEvery == 0 {
		b.sweep()
	}
}

// bodyIssued returns the distinctive values resp's body issues. A body
// of some size is read once: the values of the next body identical to it
// (the same bytes, type and encoding: a catalogue, a configuration, a
// static file every client fetches) are taken from the last reading, so
// a recording of one large response fetched a thousand times costs one
// parse. Its values are the Builder's own (never the exchange's bytes).
func (b *Builder) bodyIssued(resp *session.Response) []issued {
	if len(resp.Body) == 0 {
		return nil
	}
	var key uint64
	if len(resp.Body) >= bodyCacheFrom {
		var h maphash.Hash
		h.SetSeed(b.seed)
		h.WriteString(resp.Header.Get("Content-Type"))
		h.WriteByte(0)
		h.WriteString(resp.Header.Get("Content-Encoding"))
		h.WriteByte(0)
		h.Write(resp.Body)
		key = h.Sum64()
		if list, ok := b.bodies[key]; ok {
			return list
		}
	}
	var bf fieldSet
	bodyFields(resp, &bf)
	var list []issued
	for path, f := range bf.m {
		if Distinctive(path, f.Value) {
			list = append(list, issued{b.key(f.Value), Generalize(path)})
		}
	}
	if key != 0 {
		if len(b.bodies) >= maxBodies || b.bodyVals+len(list) > maxBodyValues {
			clear(b.bodies)
			b.bodyVals = 0
		}
		b.bodies[key] = list
		b.bodyVals += len(list)
	}
	return list
}

// key is v as the Builder keeps it.
func (b *Builder) key(v string) vkey { return vkey(maphash.String(b.seed, v)) }

// intern returns the one origin of route and field. The table is bounded:
// past maxOrigins it starts afresh (the origins values hold stay valid,
// merely no longer shared with those issued after).
func (b *Builder) intern(route, field string) *origin {
	o := origin{route, field}
	if p, ok := b.origins[o]; ok {
		return p
	}
	if len(b.origins) >= maxOrigins {
		clear(b.origins)
	}
	p := &origin{strings.Clone(route), strings.Clone(field)}
	b.origins[o] = p
	return p
}

// issue keeps a value the session's response issued.
func (b *Builder) issue(sv *sessionValues, v vkey, o *origin) {
	if _, ok := sv.vals[v]; !ok {
		sv.order = append(sv.order, v)
		b.total++
	}
	sv.vals[v] = o
	for len(sv.vals) > maxPerSession {
		old := sv.order[0]
		sv.order = sv.order[1:]
		if _, ok := sv.vals[old]; ok {
			delete(sv.vals, old)
			b.total--
			b.forgotten++
		}
	}
	if len(sv.order) > 2*maxPerSession {
		sv.order = slices.Clone(sv.order[len(sv.order)-len(sv.vals):])
	}
	if _, ok := b.recent[v]; !ok {
		b.recentQ = append(b.recentQ, v)
	}
	b.recent[v] = o
	if len(b.recentQ) > maxRecent {
		delete(b.recent, b.recentQ[0])
		b.recentQ = b.recentQ[1:]
		if len(b.recentQ) > 2*maxRecent {
			b.recentQ = slices.Clone(b.recentQ)
		}
	}
	if b.total > maxValues {
		b.sweep()
	}
}

// sweep drops sessions idle for longer than the idle time and, while the
// values or the sessions held exceed their bounds, the least recently
// active sessions (a recording proxy's tracker may start a session at
// every login; values carried across sessions are still matched among
// the recent ones).
func (b *Builder) sweep() {
	cutoff := b.now - int64(b.idle)
	for k, sv := range b.sessions {
		if sv.last < cutoff {
			b.drop(k, sv)
		}
	}
	if b.total <= maxValues && len(b.sessions) <= maxSessions {
		return
	}
	type aged struct {
		key  string
		last int64
	}
	all := make([]aged, 0, len(b.sessions))
	for k, sv := range b.sessions {
		all = append(all, aged{k, sv.last})
	}
	slices.SortFunc(all, func(x, y aged) int { return cmp.Compare(x.last, y.last) })
	for _, a := range all {
		if b.total <= maxValues*3/4 && len(b.sessions) <= maxSessions*3/4 {
			break
		}
		sv := b.sessions[a.key]
		b.forgotten += uint64(len(sv.vals)) // active sessions, not idle ones: their values may yet be carried
		b.drop(a.key, sv)
	}
}

func (b *Builder) drop(key string, sv *sessionValues) {
	b.total -= len(sv.vals)
	delete(b.sessions, key)
}

// lookup returns where v was issued: by the session, else recently by any.
func (b *Builder) lookup(sv *sessionValues, v string) (*origin, bool) {
	k := b.key(v)
	if o, ok := sv.vals[k]; ok {
		return o, true
	}
	o, ok := b.recent[k]
	return o, ok
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

// unreplaced counts a request of route carrying v at place, issued by no
// response the Builder holds.
func (b *Builder) unreplaced(route, place, v string) {
	k := [2]string{route, place}
	u := b.unrepl[k]
	if u == nil {
		if len(b.unrepl) >= maxUnreplaced {
			return
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
	var sb strings.Builder
	for i := 0; i < len(path); i++ {
		sb.WriteByte(path[i])
		if path[i] != '[' {
			continue
		}
		j := i + 1
		for j < len(path) && path[j] >= '0' && path[j] <= '9' {
			j++
		}
		if j > i+1 && j < len(path) && path[j] == ']' {
			sb.WriteByte('*')
			i = j - 1
		}
	}
	return sb.String()
}

// carried reads the values one request carries.
type carried struct {
	b     *Builder
	sv    *sessionValues
	route string
}

// value looks up one carried value at place; when no response issued it
// and it looks like a credential or an id, it is unreplaced.
func (c *carried) value(place, v string) {
	if v == "" {
		return
	}
	if o, ok := c.b.lookup(c.sv, v); ok {
		c.b.rule(o)
		return
	}
	if suspect(place, v) {
		c.b.unreplaced(c.route, place, v)
	}
}

// inText looks up the long token-like pieces of text, which the
// substitution replaces inside other text; it reports whether any was
// issued.
func (c *carried) inText(s string) bool {
	found := false
	for _, piece := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" \t\n\r\"&=;,", r) }) {
		if len(piece) < 16 || !TokenLike(piece) {
			continue
		}
		if o, ok := c.b.lookup(c.sv, piece); ok {
			c.b.rule(o)
			found = true
		}
	}
	return found
}

func (c *carried) request(req *session.Request) {
	path, query, _ := strings.Cut(req.Target, "?")
	for _, seg := range strings.Split(path, "/") {
		if dec, err := url.PathUnescape(seg); err == nil && dec != "" {
			c.value("path", dec)
		}
	}
	c.form("query:", query)
	for _, h := range req.Header {
		c.header(h.Name, h.Value)
	}
	body := req.Body
	if len(body) == 0 || len(body) > maxScanBody {
		return
	}
	mt := MediaType(req.Header.Get("Content-Type"))
	switch {
	case mt == "application/x-www-form-urlencoded":
		c.form("form:", string(body))
		return
	case strings.HasSuffix(mt, "json") || (mt == "" && LooksJSON(body)):
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			c.json("json:", v)
			return
		}
	}
	c.inText(string(body))
}

func (c *carried) form(prefix, s string) {
	if s == "" {
		return
	}
	for _, p := range strings.Split(s, "&") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		if dec, err := url.QueryUnescape(v); err == nil {
			name, _ := url.QueryUnescape(k)
			c.value(prefix+name, dec)
		}
	}
}

func (c *carried) header(name, value string) {
	name = http.CanonicalHeaderKey(name)
	switch name {
	case "Cookie":
		for _, p := range strings.Split(value, ";") {
			if k, v, ok := strings.Cut(p, "="); ok {
				c.value("cookie:"+strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`))
			}
		}
		return
	case "Authorization", "Proxy-Authorization":
		if _, cred, ok := strings.Cut(value, " "); ok {
			c.value("header:"+name, strings.TrimSpace(cred))
			return
		}
	}
	if Uncarrying(name) {
		return
	}
	if _, ok := c.b.lookup(c.sv, value); ok || !c.inText(value) {
		c.value("header:"+name, value)
	}
}

func (c *carried) json(path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			c.json(path+"."+k, e)
		}
	case []any:
		for _, e := range x {
			c.json(path+"[*]", e)
		}
	case string:
		c.value(path, x)
	case json.Number:
		c.value(path, x.String())
	}
}

// suspect reports whether a carried value no response issued looks like
// something a server issues: the Authorization credentials, a cookie, a
// header or field named like a token, a key or an id, and distinctive.
func suspect(place, v string) bool {
	kind, name, _ := strings.Cut(place, ":")
	switch kind {
	case "path":
		return false // resource names; too many are stable to tell
	case "cookie":
		return Distinctive(place, v) && len(v) >= 8
	case "header":
		if name == "Authorization" || name == "Proxy-Authorization" {
			return len(v) >= 8
		}
		return secretName(name) && Distinctive(place, v)
	}
	last := lastName(place)
	return (secretName(last) || idName(last)) && Distinctive(place, v)
}

// secretName reports whether a header or field name says it holds a
// token, a key or a session.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range [...]string{"token", "key", "auth", "session", "csrf", "xsrf", "secret", "signature", "nonce"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
