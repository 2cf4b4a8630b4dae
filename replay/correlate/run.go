package correlate

// A run table holds what every session of a replay (or of one clone of
// it) has learned, for the sessions that carry a value another session's
// response issued: a browser logs in on one connection and sends the
// token on all of them, and a replay whose sessions are connections
// (--session-keys connection, or a recording without session keys) then
// finds the token's live counterpart in no session's own table.
//
// Only values a request could have learned from nowhere else are shared:
// distinctive ones of at least 8 characters (the values the order rule
// reads as issued, see Issued). A short id is shared by no one: a "7"
// that one session's order was numbered is not the product 7 of another.
//
// A value that a request still under way will issue is no use before its
// response comes: the replay names each such request to the run table as
// it dispatches it (Issuing), and a later request carrying one of its
// values is told to wait for it (RewriteAt's Rewrite.Await), which is the
// order rule's data edge across sessions.

// maxRunValues bounds a run table; it keeps the newest values.
const maxRunValues = 4096

// MinShared is the length from which a value is shared between sessions
// (package replay/check predicts the engine's waits with it).
const MinShared = 8

// issuer is a request under way that will issue a value: its place in
// the dispatch order and the caller's handle on it.
type issuer struct {
	seq uint64
	by  any
}

// NewRunTable returns an empty run table, for NewSessionTable.
func NewRunTable() *Table {
	t := NewTable()
	t.max = maxRunValues
	t.issuing = make(map[string][]issuer)
	return t
}

// NewSessionTable returns an empty session table that shares what it
// learns with run, and whose Rewrite substitutes what run holds for the
// values the session has not learned itself. A nil run is NewTable.
func NewSessionTable(run *Table) *Table {
	t := new(Table)
	InitSessionTable(t, run)
	return t
}

// InitSessionTable makes t, a zero Table not yet used, what
// NewSessionTable(run) returns: a replay keeps each session's table inside
// the session's state, one allocation less per session.
func InitSessionTable(t *Table, run *Table) {
	t.max = maxValues
	t.run = run
}

// SetSessionLimit bounds the values each session table sharing with the
// run table t keeps (newest kept), from its next mapping on: n, within
// 1 and the bound of a table of its own (1024). A replay divides a budget
// between its sessions with it, so that what it learns is bounded
// whatever the number of sessions.
func (t *Table) SetSessionLimit(n int) {
	t.perSession.Store(int32(min(max(n, 1), maxValues)))
}

// limit is the number of values t keeps.
func (t *Table) limit() int {
	if t.run != nil {
		if n := int(t.run.perSession.Load()); n > 0 {
			return n
		}
	}
	return t.max
}

// shared reports whether v is shared with the run table.
func shared(v string) bool { return len(v) >= MinShared }

// share records a session's mapping in the run table.
func (t *Table) share(rec string, lv liveValue, token bool) {
	t.mu.Lock()
	t.tokenIndex() // sessions read it without writing (a session's table as a run table)
	t.putToken(rec, lv, token)
	t.mu.Unlock()
	t.used.Store(true)
}

// shareOrphan records in the run table that a session's request failed
// to get the live counterpart of rec, unless another session has one.
func (t *Table) shareOrphan(rec string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tokenIndex()
	if _, known := t.live[rec]; known {
		return
	}
	t.addOrphan(rec)
	t.used.Store(true)
}

// orphaned reports whether v is an orphan of the session or, when the
// run table was read (run not nil, and it may hold v), of the run.
func (t *Table) orphaned(v string, run *Table) bool {
	if t.mayHold(v) {
		if _, ok := t.orphan[v]; ok {
			return true
		}
	}
	if run == nil {
		return false
	}
	_, ok := run.orphan[v]
	return ok
}

// Issuing tells the run table that the request numbered seq (the
// replay's dispatch order, counting from 1), handled by by, is under way
// and that its recorded response issued values. Until Settle, a request
// numbered above seq that carries one of them is told to await by
// (RewriteAt). Values too short to share are passed over.
func (t *Table) Issuing(values []string, seq uint64, by any) {
	if len(values) == 0 || t.issuing == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range values {
		if shared(v) {
			t.lens.Or(lenBit(v))
			t.issuing[v] = append(t.issuing[v], issuer{seq, by})
			if tokenLike(v) {
				t.tokens.add(v) // to be found inside other text too
			}
		}
	}
	t.used.Store(true)
}

// Settle tells the run table that the request numbered seq has completed
// and learned what it could of values (given to Issuing). It stops
// standing for them, and so do the requests before it that issued them
// too: a later request carries the latest issue.
func (t *Table) Settle(values []string, seq uint64) {
	if len(values) == 0 || t.issuing == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range values {
		list := t.issuing[v]
		keep := list[:0]
		for _, is := range list {
			if is.seq > seq {
				keep = append(keep, is)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(t.issuing, v)
			if _, ok := t.live[v]; !ok {
				if _, ok := t.orphan[v]; !ok {
					t.tokens.remove(v)
				}
			}
		} else {
			t.issuing[v] = keep
		}
	}
}

// issuer returns the latest request numbered below seq that will issue v
// and is still under way; nil when there is none. The caller holds t's
// lock.
func (t *Table) issuer(v string, seq uint64) any {
	var best *issuer
	for i, is := range t.issuing[v] {
		if is.seq < seq && (best == nil || is.seq > best.seq) {
			best = &t.issuing[v][i]
		}
	}
	if best == nil {
		return nil
	}
	return best.by
}
