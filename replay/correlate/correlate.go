// Package correlate keeps a replayed session's server-issued values live.
//
// A recording holds the values its server issued: access and refresh
// tokens, cookies, ids in JSON bodies. The session's later requests carry
// them back. Sent unchanged to another server they mean nothing there, so a
// replay must swap each one for what the target issued in its place.
//
// Discovery is generic, not tied to any API: every time a request of the
// session completes, the recorded response and the live one are aligned
// field by field (JSON leaves by path, form-encoded fields by name, cookies
// by name, other response headers by name). Each aligned pair whose recorded
// value is distinctive (see Distinctive) becomes a mapping recorded -> live.
// A recorded value that the live response lacks (the login failed, the
// request errored) becomes an orphan: a later request that carries it is
// uncorrelated.
//
// Substitution is by whole value in structured places: path segments,
// query and form values, cookie values, the credentials of an
// Authorization header, whole header values, and JSON string and number
// leaves (the JSON text is edited in place, so key order and formatting
// stay as recorded). Long token-like values (see tokenLike) are also
// replaced where they occur inside other text. Short values are never
// replaced inside other text, which is what keeps an id such as "7" from
// being rewritten inside "17".
//
// A Table is one session's state; it is safe for concurrent use, because
// overlapping requests of a session may complete at the same time. A
// session's table may share what it learns with a run table (see
// NewRunTable), where every other session of the run finds it: a token
// one connection's login issued is carried by the client's other
// connections too.
package correlate

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/corrplan"
)

// maxValues bounds one table. A session whose responses carry more
// distinctive values than this (a huge catalogue) keeps the newest ones.
const maxValues = 1024

// liveValue is what the target issued in place of a recorded value.
type liveValue struct {
	text   string
	number bool // a JSON number, written without quotes into JSON bodies
}

// Table maps one session's recorded server-issued values to live ones.
type Table struct {
	mu     sync.RWMutex
	live   map[string]liveValue
	orphan map[string]struct{}
	order  []string // insertion order of live, for eviction
	// tokens are the long token-like recorded values (keys of live or
	// orphan) searched for inside other text. A session's table that
	// shares with a run table builds them on first use (see tokenIndex),
	// and keeps them from then on; indexed says it has.
	tokens  tokenSet
	indexed bool
	max     int // values kept: maxValues, or maxRunValues in a run table

	// run is the run table the session's table shares with (nil for a
	// table of its own). A run table itself has the requests under way
	// whose recorded responses issue values (see Issuing), and used,
	// set once it holds anything, which spares an empty run table's lock.
	run     *Table
	issuing map[string][]issuer
	used    atomic.Bool
	// lens has bit lenBit(v) set for every value v the table has held
	// (live, orphan or issuing), and keeps it when v goes: a value of
	// a length the table never held is not in it. A request's other
	// values (the "api" of GET /api, the "bench" of a login's JSON
	// body) are rarely as long as the tokens it learns, and each cost a
	// look-up in every map of its session's table and of the run table,
	// maps touched by every session and so rarely in the cache.
	// It is read without t.mu: a session asks its run table before
	// taking the run table's lock (see runRead).
	lens       atomic.Uint64
	perSession atomic.Int32 // see SetSessionLimit; 0: maxValues
}

// NewTable returns an empty table. Its maps are made by the first value
// put in them: a replay makes a table for each session, and most sessions
// of many recordings learn nothing.
func NewTable() *Table {
	return &Table{max: maxValues}
}

// addOrphan records that rec had no live counterpart; t.mu is held.
func (t *Table) addOrphan(rec string) {
	if t.orphan == nil {
		t.orphan = make(map[string]struct{})
	}
	t.orphan[rec] = struct{}{}
	t.lens.Or(lenBit(rec))
	if t.indexing() && tokenLike(rec) {
		t.tokens.add(rec)
	}
}

// indexing reports whether t keeps its token index as values come and
// go. A session's table does once it has been searched: a client that
// logs in every few requests puts a token in its session's table at
// every login, and evicts one, and most replays never search a session's
// table for a token inside other text (the token is a whole header value
// or JSON leaf), nor need the run table's index, which every session
// adds the same tokens to, twice.
func (t *Table) indexing() bool { return t.run == nil || t.indexed }

// tokenIndex returns t's token index, made from its values on first use;
// t.mu is held for writing.
func (t *Table) tokenIndex() *tokenSet {
	if !t.indexing() {
		t.indexed = true
		for v := range t.live {
			if tokenLike(v) {
				t.tokens.add(v)
			}
		}
		for v := range t.orphan {
			if tokenLike(v) {
				t.tokens.add(v)
			}
		}
	}
	return &t.tokens
}

// Len returns how many recorded values have a live counterpart.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}

// Learn aligns a recorded response with the live response to the same
// request and records each distinctive pair. live may be nil when the
// request failed or was not sent: then every distinctive recorded value
// becomes an orphan. It returns how many mappings it recorded.
func (t *Table) Learn(rec, live *session.Response) int {
	if rec == nil || len(rec.Header) == 0 && len(rec.Body) == 0 {
		return 0 // nothing was issued: spare Fields' map
	}
	return t.LearnFields(Fields(rec), live)
}

// LearnFields is Learn given the recorded response's Fields, for a caller
// that has read them already (the replay reads them once for IssuedFields
// and for this).
func (t *Table) LearnFields(recFields map[string]Field, live *session.Response) int {
	if len(recFields) == 0 {
		return 0
	}
	var liveFields map[string]Field
	if live != nil {
		liveFields = Fields(live)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for path, rf := range recFields {
		if !Distinctive(path, rf.Value) {
			continue
		}
		lf, ok := liveFields[path]
		if !ok || lf.Value == "" {
			// Keep an older live mapping for the same value: a later
			// response that merely lacks the field does not revoke it.
			if _, known := t.live[rf.Value]; !known {
				t.addOrphan(rf.Value)
				if t.run != nil && shared(rf.Value) {
					t.run.shareOrphan(rf.Value)
				}
			}
			continue
		}
		t.put(rf.Value, liveValue{text: lf.Value, number: lf.Number})
		n++
	}
	return n
}

// Map records one mapping by hand (e.g. a value learned elsewhere).
func (t *Table) Map(recorded, live string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.put(recorded, liveValue{text: live})
}

func (t *Table) put(rec string, lv liveValue) {
	t.putToken(rec, lv, tokenLike(rec))
}

// putToken is put told whether rec is token-like, which the session's
// table and the run table it shares with would otherwise each work out.
// A client that logs in every few requests puts a new token in both at
// every login, so the map work is counted here: one assignment (the
// table's size tells a new value), and the orphans are left alone when
// there are none.
func (t *Table) putToken(rec string, lv liveValue, token bool) {
	if t.live == nil {
		t.live = make(map[string]liveValue)
	}
	n := len(t.live)
	t.live[rec] = lv
	if len(t.live) > n {
		t.order = append(t.order, rec)
	}
	if len(t.orphan) > 0 {
		delete(t.orphan, rec)
	}
	t.lens.Or(lenBit(rec))
	if token && t.indexing() {
		t.tokens.add(rec)
	}
	limit := t.limit()
	for len(t.live) > limit && len(t.order) > 0 {
		old := t.order[0]
		t.order = t.order[1:]
		delete(t.live, old)
		// A value a request under way will issue again stays in a run
		// table's index, for requests that carry it inside other text
		// to await that one; Settle takes it out.
		if t.indexing() && len(t.issuing[old]) == 0 {
			t.tokens.remove(old)
		}
	}
	if len(t.order) > 2*limit {
		t.order = append([]string(nil), t.order[len(t.order)-limit:]...)
	}
	if t.run != nil && shared(rec) {
		t.run.share(rec, lv, token)
	}
}

// lenBit is the bit of Table.lens for v.
func lenBit(v string) uint64 { return 1 << min(len(v), 63) }

// mayHold reports whether t may hold v (see Table.lens).
func (t *Table) mayHold(v string) bool { return t.lens.Load()&lenBit(v) != 0 }

// runRead is a session's run table as a rewrite reads it: the lock is
// taken when a value is first looked for there, and held to the end of
// the rewrite. Most requests of a client that logs in every few requests
// carry only their session's token and values no table holds, and each
// took the lock that every session's requests, learning and the
// dispatcher contend for.
type runRead struct {
	t    *Table // nil when there is no run table or it holds nothing
	held bool
}

// table returns the run table, read-locked, or nil.
func (r *runRead) table() *Table {
	if r.t != nil && !r.held {
		r.t.mu.RLock()
		r.held = true
	}
	return r.t
}

// release unlocks the run table if table locked it.
func (r *runRead) release() {
	if r.held {
		r.t.mu.RUnlock()
		r.held = false
	}
}

// Rewrite is the outcome of substituting one request.
type Rewrite struct {
	// Substituted counts the values replaced by live ones.
	Substituted int
	// Orphans lists recorded server-issued values the request carries that
	// have no live counterpart; non-empty means the request is uncorrelated.
	Orphans []string
	// Await lists the requests under way (as given to the run table's
	// Issuing) whose responses issue values the request carries: the
	// request must not go before they complete, and is rewritten again
	// then (see RewriteAt).
	Await []any
}

// Rewrite substitutes live values into a copy of req and returns it. The
// recorded request is never modified.
func (t *Table) Rewrite(req *session.Request) (session.Request, Rewrite) {
	return t.RewriteAt(req, 0)
}

// RewriteAt is Rewrite for the request numbered seq in the replay's
// dispatch order (see Issuing): a value it carries that the run table
// knows a request numbered below seq, still under way, to issue is not
// substituted but named in Await. Seq 0 awaits nothing.
func (t *Table) RewriteAt(req *session.Request, seq uint64) (session.Request, Rewrite) {
	out := *req
	var rw Rewrite
	t.mu.Lock()
	defer t.mu.Unlock()
	rr := &runRead{}
	if t.run != nil && t.run.used.Load() {
		rr.t = t.run
		defer rr.release()
	}
	if len(t.live) == 0 && len(t.orphan) == 0 && rr.t == nil {
		return out, rw
	}
	sub := func(v string) (string, bool, bool) { // new value, number, replaced
		var lv liveValue
		ok := false
		if t.mayHold(v) {
			lv, ok = t.live[v]
		}
		var run *Table // read only if it may hold v
		if !ok && rr.t != nil && rr.t.mayHold(v) {
			run = rr.table()
		}
		if !ok && run != nil {
			if by := run.issuer(v, seq); by != nil {
				if !slices.Contains(rw.Await, by) {
					rw.Await = append(rw.Await, by)
				}
				return v, false, false
			}
			lv, ok = run.live[v]
		}
		if ok {
			if lv.text != v {
				rw.Substituted++
			}
			return lv.text, lv.number, true
		}
		if t.orphaned(v, run) {
			rw.Orphans = append(rw.Orphans, v)
		}
		return v, false, false
	}
	out.Target = t.rewriteTarget(req.Target, sub)
	// The recorded fields are copied only once one changes: most
	// requests keep most of theirs, and many keep all.
	copied := false
	for i, h := range req.Header {
		if v := t.rewriteHeader(h.Name, h.Value, sub, &rw, rr); v != h.Value {
			if !copied {
				out.Header, copied = slices.Clone(req.Header), true
			}
			out.Header[i].Value = v
		}
	}
	out.Body = t.rewriteBody(req.Header.Get("Content-Type"), req.Body, sub, &rw, rr)
	if len(out.Body) != len(req.Body) {
		out.BodySize = req.BodySize + int64(len(out.Body)-len(req.Body))
	}
	if len(rw.Orphans) > 1 {
		slices.Sort(rw.Orphans)
		rw.Orphans = slices.Compact(rw.Orphans)
	}
	return out, rw
}

type subFunc func(string) (string, bool, bool)

func (t *Table) rewriteTarget(target string, sub subFunc) string {
	path, query, hasQuery := strings.Cut(target, "?")
	// The segments are looked at in place: most targets carry no value
	// to replace, and splitting and joining each one cost two
	// allocations per request.
	var b []byte // the new path up to i, once a segment changed
	last := 0    // the end of the path copied into b
	for i := 0; i < len(path); {
		j := partEnd(path, i, '/')
		if seg := path[i:j]; seg != "" {
			if dec, err := url.PathUnescape(seg); err == nil {
				if nv, _, ok := sub(dec); ok && nv != dec {
					b = append(append(b, path[last:i]...), url.PathEscape(nv)...)
					last = j
				}
			}
		}
		i = j + 1
	}
	if b != nil {
		path = string(append(b, path[last:]...))
	}
	if !hasQuery {
		if b == nil {
			return target
		}
		return path
	}
	q := rewriteForm(query, sub)
	if b == nil && q == query {
		return target
	}
	return path + "?" + q
}

// partEnd returns the end of the part of s that starts at i: the index
// of the next sep, or len(s).
func partEnd(s string, i int, sep byte) int {
	if j := strings.IndexByte(s[i:], sep); j >= 0 {
		return i + j
	}
	return len(s)
}

// rewriteForm substitutes values (not names) of an application/
// x-www-form-urlencoded string, keeping the order and the untouched pairs'
// bytes as they were.
func rewriteForm(s string, sub subFunc) string {
	var b []byte // the new string up to the pair at i, once a value changed
	last := 0
	for i := 0; i <= len(s); {
		j := partEnd(s, i, '&')
		if k, v, ok := strings.Cut(s[i:j], "="); ok && v != "" {
			if dec, err := url.QueryUnescape(v); err == nil {
				if nv, _, ok := sub(dec); ok && nv != dec {
					b = append(append(b, s[last:i]...), k...)
					b = append(append(b, '='), url.QueryEscape(nv)...)
					last = j
				}
			}
		}
		i = j + 1
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

func (t *Table) rewriteHeader(name, value string, sub subFunc, rw *Rewrite, run *runRead) string {
	if corrplan.Uncarrying(name) {
		return value
	}
	switch {
	case strings.EqualFold(name, "Cookie"):
		var b []byte // the new value up to the pair at i, once one changed
		last := 0
		for i := 0; i <= len(value); {
			j := partEnd(value, i, ';')
			if k, v, ok := strings.Cut(value[i:j], "="); ok {
				if nv, _, ok := sub(strings.Trim(v, `"`)); ok && nv != v {
					b = append(append(append(b, value[last:i]...), k...), '=')
					b = append(b, nv...)
					last = j
				}
			}
			i = j + 1
		}
		if b == nil {
			return value
		}
		return string(append(b, value[last:]...))
	case strings.EqualFold(name, "Authorization"), strings.EqualFold(name, "Proxy-Authorization"):
		if scheme, cred, ok := strings.Cut(value, " "); ok {
			if nv, _, ok := sub(strings.TrimSpace(cred)); ok {
				return scheme + " " + nv
			}
		}
	}
	if nv, _, ok := sub(value); ok {
		return nv
	}
	return t.replaceTokens(value, sub, rw, run)
}

// replaceTokens replaces long token-like recorded values found inside s,
// the session's and then the run table's.
func (t *Table) replaceTokens(s string, sub subFunc, rw *Rewrite, run *runRead) string {
	s = replaceIn(s, t.tokenIndex().in(s), sub, rw)
	if r := run.table(); r != nil {
		s = replaceIn(s, r.tokens.in(s), sub, rw)
	}
	return s
}

// replaceIn replaces each of toks found in s by what sub gives for it
// (which counts one substitution; rw counts the other occurrences).
func replaceIn(s string, toks []string, sub subFunc, rw *Rewrite) string {
	for _, tok := range toks {
		n := strings.Count(s, tok)
		if n == 0 {
			continue // replaced with an earlier token that held it
		}
		if nv, _, ok := sub(tok); ok && nv != tok {
			rw.Substituted += n - 1
			s = strings.ReplaceAll(s, tok, nv)
		}
	}
	return s
}

func (t *Table) rewriteBody(ctype string, body []byte, sub subFunc, rw *Rewrite, run *runRead) []byte {
	if len(body) == 0 {
		return body
	}
	mt := mediaType(ctype)
	switch {
	case mt == "application/x-www-form-urlencoded":
		return []byte(rewriteForm(string(body), sub))
	case strings.HasPrefix(mt, "application/grpc"):
		return t.rewriteGRPC(body, sub, rw, run)
	case strings.HasSuffix(mt, "json") || (mt == "" && looksJSON(body)):
		if json.Valid(body) {
			return rewriteJSON(body, func(_, v string) (string, bool) {
				nv, _, ok := sub(v)
				return nv, ok
			})
		}
	}
	if t.noTokens(run) {
		return body
	}
	return []byte(t.replaceTokens(string(body), sub, rw, run))
}

// noTokens reports whether neither t nor run holds a token to search for
// inside text.
func (t *Table) noTokens(run *runRead) bool {
	if t.tokenIndex().len() > 0 {
		return false
	}
	r := run.table()
	return r == nil || r.tokens.len() == 0
}

// Issued returns the values of resp that a later request carrying them
// could only have learned from it: the distinctive ones (see Distinctive)
// of at least 8 characters. The replay uses them to find data
// dependencies that timestamps alone may hide.
func Issued(resp *session.Response) []string {
	return IssuedFields(Fields(resp))
}

// IssuedFields is Issued given the response's Fields.
func IssuedFields(fields map[string]Field) []string {
	var out []string
	for path, f := range fields {
		if len(f.Value) >= 8 && Distinctive(path, f.Value) {
			out = append(out, f.Value)
		}
	}
	return out
}

// Field is one value found in a response, by its place in it (see
// corrplan.Fields, which reads them for the correlation plan as well).
type Field = corrplan.Field

// Fields lists the values of a response by path; see corrplan.Fields.
func Fields(resp *session.Response) map[string]Field { return corrplan.Fields(resp) }

// Distinctive reports whether a value at path is worth correlating; see
// corrplan.Distinctive.
func Distinctive(path, v string) bool { return corrplan.Distinctive(path, v) }

func tokenLike(v string) bool   { return corrplan.TokenLike(v) }
func mediaType(v string) string { return corrplan.MediaType(v) }
func looksJSON(b []byte) bool   { return corrplan.LooksJSON(b) }
func isNumber(s string) bool    { return corrplan.IsNumber(s) }
