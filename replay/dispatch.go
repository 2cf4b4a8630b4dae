package replay

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/replay/schedule"
	"github.com/reprise-tool/reprise/session"
)

// sessState is what the replay keeps for one session clone.
type sessState struct {
	key   string
	clone int
	table *correlate.Table // its own (tab), sharing with run
	run   *correlate.Table // its clone's run table (see correlate.NewRunTable)
	cred  *correlate.Credential

	mu          sync.Mutex
	outstanding []*pending // dispatched and not yet completed, in dispatch order
	issuing     int        // how many of outstanding issued values (rec.Issued): none, no data edge to look for
	failed      string     // first transport error, "" if none
	uncorr      string     // first uncorrelated request, "" if none
	requests    int
	firstSent   time.Time // for the session's length
	lastDone    time.Time // latest completion, for think times
	// overlapped is set when a request of outstanding started (in the
	// recording) before the one before it there ended, or with it, and
	// cleared when outstanding empties: until then, each ended before the
	// next started, and the time rule of a request that starts after the
	// last one ended is that one alone (see after).
	overlapped bool

	lastOffset time.Duration // dispatcher-only
	active     atomic.Int64  // goroutines working on its requests
	// expect is the number of requests the session has in the
	// recording (WithSessionLengths), 0 when unknown; once it has
	// dispatched that many, the session is released when they are done
	// (see releaseEnded). ended is set when the session was released,
	// by that or by evict. Both are the dispatcher's alone.
	expect uint32
	ended  bool

	// The table and the first request outstanding are made with the
	// state: with one request per session (as h2load's streams are),
	// they were two of a request's allocations.
	tab  correlate.Table
	out1 [1]*pending
}

type pending struct {
	// rec is what the order rule reads of it: its recorded start and end
	// and the values its recorded response issued (correlate.Issued).
	rec    schedule.Order
	fields map[string]correlate.Field // its recorded response's, read once for issued and learning; nil if it had none or the plan learns none (see recordedFields)
	// seq is its place in the dispatch order, from 1: a request that
	// carries a value it issues waits for it across sessions (see
	// correlate.Table.Issuing) only if it comes later.
	seq uint64

	// Under the session's lock: completed, and next, the request that
	// waits for this one alone, which the goroutine completing this one
	// then runs itself instead of waking another. done is made only for
	// a request that waits for several (see wait) and closed on
	// completion: most requests of most sessions wait for one alone, and
	// a channel each was a tenth of a request's allocation.
	completed bool
	next      *task
	done      chan struct{}
}

// task is a dispatched request and what its goroutine needs. It holds
// the request's pending entry and the first of its dependencies, so that
// a request costs one allocation for them.
type task struct {
	pending
	it      *item
	ss      *sessState
	deps    []*pending
	due     time.Time
	chained bool // run by the goroutine of the request it waited for

	// On a recorded connection (see line): the line; after, the request
	// before it there when that one is of another session (it waits for
	// it to complete); pipe, that request when this one was pipelined
	// behind it; whether the recorded client asked to close (closeReq)
	// or the server closed after the response (closeAfter); and, under
	// the line's lock, whether it is written and the channel that a
	// request pipelined behind it waits on.
	line                 *line
	after, pipe          *task
	closeReq, closeAfter bool
	wrote                bool
	wroteC               chan struct{}

	dep1 [1]*pending // deps' backing array when there is one
}

// dispatcher is the state of the dispatch loop, held by its goroutine
// alone (but for the slots and the wait group it shares with workers).
type dispatcher struct {
	r        *Replayer
	ctx      context.Context
	start    time.Time
	wg       sync.WaitGroup
	pendSem  *slots
	flight   chan struct{}
	sessions map[string]*sessState
	bases    map[string]int // order of first appearance of the base sessions, with credentials alone
	timer    *time.Timer
	max      bool
	routes   routeCache
	n        int
	seq      uint64
	runs     []*correlate.Table // the run table of each clone (see session)
	limit    int                // values each session's table keeps (see setLimits)
	lines    map[lineKey]*line  // the recorded connections replayed; nil when pooled
	issuers  []*pending         // scratch for unimplied
	pool     *workerPool        // the goroutines whose chain ended, for the next
	// oldest is a lower bound of the lastOffset of every session held:
	// the least one the last evict kept, lowered by any session given an
	// offset below it since. While the offset dispatched is within the
	// idle limit of it, no session can be idle that long and evict need
	// not look: with one request per session, a pass over every session
	// each 1024 requests cost a tenth of a --speed max replay's CPU.
	oldest time.Duration
	// ending holds the sessions that have dispatched every request they
	// have (sessState.expect), until their last completes; sinceEnd
	// counts the dispatches since releaseEnded last looked.
	ending   []*sessState
	sinceEnd int
	peakHeld int // the most sessions held at once
}

// newDispatcher makes the dispatch loop's state; its clock (start) is set
// once the run is prepared (see prepare).
func (r *Replayer) newDispatcher(ctx context.Context) *dispatcher {
	d := &dispatcher{
		r: r, ctx: ctx,
		pendSem:  newSlots(r.maxPending()),
		flight:   make(chan struct{}, r.o.maxInFlight),
		sessions: make(map[string]*sessState),
		timer:    time.NewTimer(time.Hour),
		max:      isMax(r.o.pacer),
		routes:   make(routeCache),
		pool:     newWorkerPool(r.o.maxInFlight),
	}
	if r.recorded() {
		d.lines = make(map[lineKey]*line)
	}
	d.timer.Stop()
	return d
}

// dispatch takes items in offset order, batch (taken by prepare) first,
// waits for each one's due time and starts it. It returns when items is
// closed (after every started request has finished) or the replay stops.
func (d *dispatcher) dispatch(batch []*item, more bool, items *handoff[*item]) {
	r := d.r
	defer func() {
		d.wg.Wait()
		d.pool.close()
		d.closeLines()
		d.releaseEnded()
		if f := r.o.sessionsHeld; f != nil {
			f(d.peakHeld, len(d.sessions))
		}
		for _, ss := range d.sessions {
			r.finish(ss)
		}
	}()
	for {
		d.openAhead(batch)
		for _, it := range batch {
			d.one(it)
		}
		if !more {
			return
		}
		batch, more = items.take(batch)
	}
}

// notSent counts an item the replay stopped before sending.
func (d *dispatcher) notSent(it *item) {
	d.r.st.record(&Result{Session: it.key, Method: it.ex.Request.Method, Route: d.routes.get(it.ex.Request.Method, it.ex.Request.Target)})
}

// one waits for the item's due time, enters it in its session's order
// and starts it, or counts it as not sent when the replay stops first.
func (d *dispatcher) one(it *item) {
	r := d.r
	if r.stopped() || d.ctx.Err() != nil {
		d.notSent(it) // drain what the feeder already sent
		return
	}
	due, ok := d.waitDue(it)
	if !ok {
		d.notSent(it)
		return
	}
	if it.route == "" { // the feeder names it; an item made elsewhere may not
		it.route = d.routes.get(it.ex.Request.Method, it.ex.Request.Target)
	}
	ss := d.session(it)
	ss.lastOffset = it.offset
	d.oldest = min(d.oldest, it.offset)
	t := &task{it: it, ss: ss, due: due}
	p := &t.pending
	p.rec.Start, p.rec.End = it.start, it.end
	d.seq++
	p.seq = d.seq
	if p.fields = r.recordedFields(it); p.fields != nil {
		p.rec.Issued = correlate.IssuedFields(p.fields)
		// Other sessions' later requests that carry these values wait
		// for this one (see prepare) until complete settles them.
		ss.run.Issuing(p.rec.Issued, p.seq, t)
	}
	ss.mu.Lock()
	// The order rule: the time rule (schedule.After) and the data edge
	// (schedule.Carrying), the latter only
	// when an outstanding request issued a value: a pass over every
	// request in flight of the session less, per request.
	t.deps = ss.after(t.dep1[:0], it.start)
	if ss.issuing > 0 {
		if d.issuers = unimplied(d.issuers[:0], ss.outstanding, t.deps); len(d.issuers) > 0 {
			t.deps = schedule.Carrying(t.deps, d.issuers, &it.ex.Request)
		}
		clear(d.issuers)
	}
	ss.outstanding = append(ss.outstanding, p)
	if len(p.rec.Issued) > 0 {
		ss.issuing++
	}
	ss.requests++
	last := ss.expect != 0 && ss.requests == int(ss.expect)
	ss.mu.Unlock()
	if last {
		d.ending = append(d.ending, ss)
	}
	d.onLine(t)

	if !d.admit(t) {
		if t.line != nil {
			t.line.done(t)
		}
		r.complete(ss, p)
		d.notSent(it)
		return
	}
	d.wg.Add(1)
	if len(t.deps) == 1 {
		// Waiting for one request alone: that request's goroutine
		// runs this one when it completes, which spares a goroutine
		// and two switches per request of a sequential session.
		dep := t.deps[0]
		ss.mu.Lock()
		if !dep.completed && dep.next == nil {
			t.chained = true
			dep.next = t
		}
		ss.mu.Unlock()
	}
	if !t.chained && !d.pool.give(t) {
		go r.run(d.ctx, t, d.pendSem, d.flight, &d.wg, d.pool)
	}
	if d.sinceEnd++; d.sinceEnd >= max(minEndingPass, len(d.ending)/2) {
		d.releaseEnded()
	}
	if d.n++; d.n%1024 == 0 {
		d.evictIdle(it.offset)
		d.setLimits()
		d.evictLines(it.offset)
	}
}

// minEndingPass is the fewest dispatches between two passes of
// releaseEnded. A pass looks at every session in d.ending, which holds
// those whose last request is in flight or waiting as well as those
// done: with a pass each half of its length of dispatches at least, a
// dispatch costs two looks at most, and the sessions done but not yet
// released are never more than that half or minEndingPass.
const minEndingPass = 64

// releaseEnded releases the sessions of d.ending whose requests have all
// completed: a session there has dispatched every request the recording
// has for it, so nothing can come for it again. Their goroutines are
// done with it once active is 0 (see chain): its outcome is final.
func (d *dispatcher) releaseEnded() {
	d.sinceEnd = 0
	kept := d.ending[:0]
	for _, ss := range d.ending {
		switch {
		case ss.ended: // evicted as idle meanwhile
		case ss.active.Load() == 0:
			d.r.release(d.sessions, ss)
		default:
			kept = append(kept, ss)
		}
	}
	clear(d.ending[len(kept):])
	d.ending = kept
}

// release counts a session's outcome and drops its state from sessions,
// whether it ended (releaseEnded) or went idle (evict).
func (r *Replayer) release(sessions map[string]*sessState, ss *sessState) {
	r.finish(ss)
	delete(sessions, ss.key)
	ss.ended = true
}

// unimplied appends to out the requests of outstanding that issued a
// value and that no request of deps waits for already: the data edge to
// such a request adds nothing when the time rule orders it before one of
// deps, since that one waits for it (see schedule.After, whose fewest
// imply the rest). Without them, a request of a login flow that carries
// the token waited for the login and its predecessor both, and a request
// that waits for two runs on a goroutine of its own, not chained to the
// one it waited for (see one): half the flow's requests did.
func unimplied(out, outstanding, deps []*pending) []*pending {
	for _, p := range outstanding {
		if len(p.rec.Issued) == 0 {
			continue
		}
		implied := false
		for _, e := range deps {
			if e == p || p.seq < e.seq && schedule.Settled(&p.rec, e.rec.Start) {
				implied = true
				break
			}
		}
		if !implied {
			out = append(out, p)
		}
	}
	return out
}

// after is schedule.After over the session's outstanding requests, for a
// request starting at start that is then appended to them; ss.mu is
// held. A sequential session's request waits for the last one alone,
// found without a pass over every request of the session in flight.
func (ss *sessState) after(deps []*pending, start int64) []*pending {
	n := len(ss.outstanding)
	if n > 0 && !ss.overlapped {
		if last := &ss.outstanding[n-1].rec; schedule.Settled(last, start) && last.Start < start {
			return append(deps, ss.outstanding[n-1])
		}
	}
	// The new one starts before the last one ended, or with it (then
	// schedule.After keeps both), or the session overlapped already.
	ss.overlapped = n > 0
	return schedule.After(deps, ss.outstanding, start)
}

// waitDue returns the item's due time, after sleeping until just before
// it (see lead); ok is false when the replay stopped meanwhile.
func (d *dispatcher) waitDue(it *item) (due time.Time, ok bool) {
	r := d.r
	if d.max {
		return time.Now(), true
	}
	due = d.start.Add(r.o.pacer.Due(it.offset))
	r.dues.add(due)
	if wait := time.Until(due) - lead; wait > 0 {
		d.timer.Reset(wait)
		select {
		case <-d.timer.C:
		case <-r.stopCh:
			d.timer.Stop()
			return due, false
		case <-d.ctx.Done():
			d.timer.Stop()
			return due, false
		}
	}
	return due, true
}

// session returns the item's session state, made on its first request.
func (d *dispatcher) session(it *item) *sessState {
	if ss := d.sessions[it.key]; ss != nil {
		return ss
	}
	for len(d.runs) <= it.clone {
		run := correlate.NewRunTable()
		if d.limit > 0 {
			run.SetSessionLimit(d.limit)
		}
		d.runs = append(d.runs, run)
	}
	run := d.runs[it.clone]
	// The key is a clone: the exchange's may share the block the
	// recording was decoded from, which a session held for its idle
	// limit kept alive (a fifth of the heap of a replay of one-request
	// sessions).
	ss := &sessState{key: strings.Clone(it.key), clone: it.clone, run: run}
	if n, ok := d.r.o.sessLengths.Requests(it.base); ok {
		ss.expect = n
	}
	correlate.InitSessionTable(&ss.tab, run)
	ss.table, ss.outstanding = &ss.tab, ss.out1[:0]
	if o := &d.r.o; len(o.credentials) > 0 {
		// The credentials go round the base sessions in the order of
		// their first appearance, which only they need kept: a map of
		// every session of the run, beside the sessions held.
		idx, ok := d.bases[it.base]
		if !ok {
			if d.bases == nil {
				d.bases = make(map[string]int)
			}
			idx = len(d.bases)
			d.bases[strings.Clone(it.base)] = idx
		}
		c := o.credentials[(idx*o.scale+it.clone)%len(o.credentials)]
		ss.cred = &c
	}
	d.sessions[ss.key] = ss
	d.peakHeld = max(d.peakHeld, len(d.sessions))
	d.setLimits()
	return ss
}

// The budget of live values the sessions' tables keep between them:
// each of n sessions keeps sessionValues/n of its newest, at least
// minSessionValues (and at most a table's own bound, 1024). A value of 8
// characters or more is also in its clone's run table. Without it, 64
// sessions each learning a login's token every few requests held 64 × 1024
// tokens, 20 MB, however long the recording.
const (
	sessionValues    = 8192
	minSessionValues = 64
)

// setLimits shares the budget between the sessions held.
func (d *dispatcher) setLimits() {
	n := max(sessionValues/max(len(d.sessions), 1), minSessionValues)
	if n == d.limit {
		return
	}
	d.limit = n
	for _, run := range d.runs {
		run.SetSessionLimit(n)
	}
}

// admit takes the task's pending slot and, when its session starts work,
// a --max-sessions slot. It returns false, holding neither, when the
// replay stopped first.
func (d *dispatcher) admit(t *task) bool {
	r, ss := d.r, t.ss
	// While the dispatcher waits for a slot, the request it holds is
	// the oldest due and unsent: its lateness is the backlog. It says
	// so only when it may wait: two stores a request to a line of the
	// Replayer that every request's goroutine reads cost them a miss
	// each.
	blocked := false
	if !d.pendSem.tryAcquire() {
		r.blockedDue.Store(t.due.UnixNano())
		blocked = true
		if !d.pendSem.acquire(r.stopCh, d.ctx.Done()) {
			return false
		}
	}
	if ss.active.Add(1) == 1 && r.sessSem != nil {
		// The session starts work: it needs a --max-sessions slot,
		// and the schedule waits for one (the delay shows as lag).
		if !blocked {
			r.blockedDue.Store(t.due.UnixNano())
			blocked = true
		}
		if _, err := r.sessSem.Acquire(r.issueCtx); err != nil {
			ss.active.Add(-1)
			d.pendSem.release()
			return false
		}
	}
	if blocked {
		r.blockedDue.Store(0)
	}
	return true
}

// routeCache remembers the routes of request-targets already seen, for
// the dispatcher alone; it stops growing at maxRouteCache entries.
type routeCache map[routeKey]string

// routeKey is a struct, not a joined string, so that a look-up allocates
// nothing.
type routeKey struct{ method, target string }

const maxRouteCache = 10000

func (c routeCache) get(method, target string) string {
	k := routeKey{method, target}
	if rt, ok := c[k]; ok {
		return rt
	}
	rt := session.Route(method, target)
	if len(c) < maxRouteCache {
		c[k] = rt
	}
	return rt
}

// maxPending is the cap on requests dispatched and not yet done. At
// --speed max it is a few times the in-flight cap (WithMaxPending
// overrides it): enough for every slot to have its next request ready,
// and for a sequential session's next requests to wait chained to the
// one before. Every request held there beyond the slots is a goroutine
// parked on a slot, with its stack, its exchange and its session: at 16
// times a cap of 128, 2 000 goroutines, 9 MiB of stacks and a third of
// the live heap, under the memory limit a collection every 3 MB
// allocated and a fifth of the CPU (replaying one-request HTTP/2
// sessions); at 4 times, 5%.
func (r *Replayer) maxPending() int {
	if isMax(r.o.pacer) && !r.o.pendingSet {
		return min(r.o.maxPending, maxPendingPerSlot*r.o.maxInFlight)
	}
	return r.o.maxPending
}

// maxPendingPerSlot is maxPending's multiple of the in-flight cap at
// --speed max.
const maxPendingPerSlot = 4

// evictIdle is evict when a session may be idle past the limit at now.
func (d *dispatcher) evictIdle(now time.Duration) {
	if now-d.oldest > d.r.o.idle {
		d.oldest = d.r.evict(d.sessions, now)
	}
}

// evict releases sessions idle for longer than the idle limit. It
// returns the least lastOffset of the sessions it kept, now if none: a
// session made later takes an offset of now or later.
func (r *Replayer) evict(sessions map[string]*sessState, now time.Duration) (oldest time.Duration) {
	oldest = now
	for _, ss := range sessions {
		if now-ss.lastOffset > r.o.idle && ss.active.Load() == 0 {
			r.release(sessions, ss)
			continue
		}
		oldest = min(oldest, ss.lastOffset)
	}
	return oldest
}

// finish counts a session's outcome.
func (r *Replayer) finish(ss *sessState) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.firstSent.IsZero() && ss.lastDone.After(ss.firstSent) {
		r.sends.session(ss.lastDone.Sub(ss.firstSent))
	}
	switch {
	case ss.failed != "":
		r.st.session(ss.key, "failed", ss.failed)
	case ss.uncorr != "":
		r.st.session(ss.key, "uncorrelated", ss.uncorr)
	default:
		r.st.session(ss.key, "completed", "")
	}
}

// complete marks p done and drops it from the session's outstanding list.
// It returns the request chained to p, if any, for the caller to run.
func (r *Replayer) complete(ss *sessState, p *pending) *task {
	ss.run.Settle(p.rec.Issued, p.seq) // learned already: later requests take the live values
	ss.mu.Lock()
	for i, o := range ss.outstanding {
		if o == p {
			// The slot freed at the end is cleared: a session held
			// for its idle limit kept its last request, the exchange
			// it was decoded from included, alive in it (half the
			// heap of a replay of one-request sessions).
			n := len(ss.outstanding) - 1
			copy(ss.outstanding[i:], ss.outstanding[i+1:])
			ss.outstanding[n] = nil
			ss.outstanding = ss.outstanding[:n]
			if len(ss.outstanding) == 0 {
				ss.overlapped = false
			}
			if len(p.rec.Issued) > 0 {
				ss.issuing--
			}
			break
		}
	}
	p.completed = true
	next := p.next
	p.next = nil
	if p.done != nil {
		close(p.done)
	}
	ss.mu.Unlock()
	return next
}

// wait waits until d has completed and reports whether it had to.
func wait(ss *sessState, d *pending, w *worker) bool {
	ss.mu.Lock()
	if d.completed {
		ss.mu.Unlock()
		return false
	}
	if d.done == nil {
		d.done = make(chan struct{})
	}
	done := d.done
	ss.mu.Unlock()
	w.idle()
	<-done
	return true
}

// Order implements schedule.Entry.
func (p *pending) Order() *schedule.Order { return &p.rec }
