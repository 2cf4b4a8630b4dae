package replay

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/session"
)


// sessState is what the replay keeps for one session clone.
type sessState struct {
	key   string
	index int // order of first appearance of the base session
	clone int
	table *correlate.Table
	cred  *correlate.Credential

	mu          sync.Mutex
	outstanding []*pending // dispatched and not yet completed, in dispatch order
	failed      string     // first transport error, "" if none
	uncorr      string     // first uncorrelated request, "" if none
	requests    int
	firstSent   time.Time // for the session's length
	lastDone    time.Time // latest completion, for think times

	lastOffset time.Duration // dispatcher-only
	active     atomic.Int64  // goroutines working on its requests
}

type pending struct {
	start, end int64
	issued     []string                   // values its recorded response issued (see correlate.Issued)
	fields     map[string]correlate.Field // its recorded response's, read once for issued and learning; nil if it had none

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

	dep1 [1]*pending // deps' backing array when there is one
}

// dispatch takes items in offset order, waits for each one's due time and
// starts it. It returns when items is closed (after every started request
// has finished) or the replay stops.
func (r *Replayer) dispatch(ctx context.Context, start time.Time, items *handoff[*item]) {
	var (
		wg       sync.WaitGroup
		pendSem  = newSlots(r.maxPending())
		flight   = make(chan struct{}, r.o.maxInFlight)
		sessions = make(map[string]*sessState)
		bases    = make(map[string]int)
		timer    = time.NewTimer(time.Hour)
		max      = isMax(r.o.pacer)
		routes   = make(routeCache)
		n        int
	)
	timer.Stop()
	defer func() {
		wg.Wait()
		for _, ss := range sessions {
			r.finish(ss)
		}
	}()
	notSent := func(it *item) {
		r.st.record(&Result{Session: it.key, Method: it.ex.Request.Method, Route: routes.get(it.ex.Request.Method, it.ex.Request.Target)})
	}
	var batch []*item
	for {
		var more bool
		if batch, more = items.take(batch); !more {
			break
		}
		for _, it := range batch {
			if r.stopped() || ctx.Err() != nil {
				notSent(it)
				continue // drain what the feeder already sent
			}
			var due time.Time
			if max {
				due = time.Now()
			} else {
				due = start.Add(r.o.pacer.Due(it.offset))
				r.dues.add(due)
				if wait := time.Until(due) - lead; wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-r.stopCh:
						timer.Stop()
						notSent(it)
						continue
					case <-ctx.Done():
						timer.Stop()
						notSent(it)
						continue
					}
				}
			}
			it.route = routes.get(it.ex.Request.Method, it.ex.Request.Target)
			ss := sessions[it.key]
			if ss == nil {
				idx, ok := bases[it.base]
				if !ok {
					idx = len(bases)
					bases[it.base] = idx
				}
				ss = &sessState{key: it.key, index: idx, clone: it.clone, table: correlate.NewTable()}
				if len(r.o.credentials) > 0 {
					c := r.o.credentials[(idx*r.o.scale+it.clone)%len(r.o.credentials)]
					ss.cred = &c
				}
				sessions[it.key] = ss
			}
			ss.lastOffset = it.offset
			t := &task{it: it, ss: ss, due: due}
			p := &t.pending
			p.start, p.end = it.start, it.end
			if it.ex.Flags&session.FlagNoResponse == 0 && (len(it.ex.Response.Body) > 0 || len(it.ex.Response.Header) > 0) {
				p.fields = correlate.Fields(&it.ex.Response)
				p.issued = correlate.IssuedFields(p.fields)
			}
			ss.mu.Lock()
			deps := dependencies(t.dep1[:0], ss.outstanding, it.start)
			deps = dataDependencies(ss.outstanding, it, deps)
			t.deps = deps
			ss.outstanding = append(ss.outstanding, p)
			ss.requests++
			ss.mu.Unlock()

			// While the dispatcher waits for a slot, the request it holds is
			// the oldest due and unsent: its lateness is the backlog.
			r.blockedDue.Store(due.UnixNano())
			if !pendSem.acquire(r.stopCh, ctx.Done()) {
				r.complete(ss, p)
				notSent(it)
				continue
			}
			if ss.active.Add(1) == 1 && r.sessSem != nil {
				// The session starts work: it needs a --max-sessions slot,
				// and the schedule waits for one (the delay shows as lag).
				if _, err := r.sessSem.Acquire(r.issueCtx); err != nil {
					ss.active.Add(-1)
					pendSem.release()
					r.complete(ss, p)
					notSent(it)
					continue
				}
			}
			r.blockedDue.Store(0)
			wg.Add(1)
			if len(deps) == 1 {
				// Waiting for one request alone: that request's goroutine
				// runs this one when it completes, which spares a goroutine
				// and two switches per request of a sequential session.
				d := deps[0]
				ss.mu.Lock()
				if !d.completed && d.next == nil {
					t.chained = true
					d.next = t
				}
				ss.mu.Unlock()
			}
			if !t.chained {
				go r.run(ctx, t, pendSem, flight, &wg)
			}

			if n++; n%1024 == 0 {
				r.evict(sessions, it.offset)
			}
		}
	}
}

// dependencies returns what a request starting at start must wait for:
// the outstanding requests of its session that completed (in the
// recording) at or before start. It returns the fewest that imply the
// rest: among them, the one that started last (B) depends in turn on every
// one that completed before B started, so only B and those that were still
// running when B started are kept. A sequential session thus waits for one
// request per request, however far ahead the schedule runs, and its
// requests are chained: each runs on the goroutine of the one before.
func dependencies(deps, outstanding []*pending, start int64) []*pending {
	var last *pending
	for _, o := range outstanding {
		if o.end != 0 && o.end <= start && (last == nil || o.start > last.start) {
			last = o
		}
	}
	if last == nil {
		return nil
	}
	deps = append(deps, last)
	for _, o := range outstanding {
		if o != last && o.end != 0 && o.end <= start && o.end > last.start {
			deps = append(deps, o)
		}
	}
	return deps
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

func (r *Replayer) maxPending() int {
	if isMax(r.o.pacer) && !r.o.pendingSet {
		return min(r.o.maxPending, 16*r.o.maxInFlight)
	}
	return r.o.maxPending
}

// dataDependencies adds to deps the outstanding requests whose recorded
// response issued a value the request carries. Such a request cannot have
// started before that response arrived, whatever the timestamps say: a
// recording proxy may stamp the next request of a connection a few
// microseconds before it stamps the end of the response that came first.
func dataDependencies(outstanding []*pending, it *item, deps []*pending) []*pending {
	var hay string
	for _, o := range outstanding {
		if len(o.issued) == 0 || slices.Contains(deps, o) {
			continue
		}
		if hay == "" {
			hay = requestText(&it.ex.Request)
		}
		for _, v := range o.issued {
			if strings.Contains(hay, v) {
				deps = append(deps, o)
				break
			}
		}
	}
	return deps
}

// requestText is everything of a request a value could be carried in.
func requestText(r *session.Request) string {
	var b strings.Builder
	b.WriteString(r.Target)
	for _, h := range r.Header {
		b.WriteByte('\n')
		b.WriteString(h.Value)
	}
	b.WriteByte('\n')
	b.Write(r.Body)
	return b.String()
}

// evict releases sessions idle for longer than the idle limit.
func (r *Replayer) evict(sessions map[string]*sessState, now time.Duration) {
	for k, ss := range sessions {
		if now-ss.lastOffset > r.o.idle && ss.active.Load() == 0 {
			r.finish(ss)
			delete(sessions, k)
		}
	}
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
	ss.mu.Lock()
	for i, o := range ss.outstanding {
		if o == p {
			ss.outstanding = append(ss.outstanding[:i], ss.outstanding[i+1:]...)
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
