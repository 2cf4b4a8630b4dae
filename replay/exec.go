package replay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
)

// run does t, then each request chained to the one just completed, and
// releases each one's slots as its goroutine of its own used to. When
// the chain ends, it waits in pool for the next request the dispatcher
// would start a goroutine for, until the dispatch ends (see workerPool).
func (r *Replayer) run(ctx context.Context, t *task, pendSem *slots, flight chan struct{}, wg *sync.WaitGroup, pool *workerPool) {
	w := &worker{r: r}
	for t != nil {
		r.chain(ctx, t, pendSem, flight, wg, w)
		if t = pool.wait(); t == nil {
			return
		}
	}
}

// workerPool holds the goroutines whose chain of requests ended, for the
// dispatcher to give a request to instead of starting one: a new
// goroutine grows its stack again, by copies, to the depth of a request,
// and at --speed max a tenth to a fifth of the requests started one. It
// keeps at most max of them.
type workerPool struct {
	tasks chan *task // unbuffered: a request goes to a waiting goroutine or to none
	idle  atomic.Int64
	max   int64
}

func newWorkerPool(max int) *workerPool {
	return &workerPool{tasks: make(chan *task), max: int64(max)}
}

// give hands t to a waiting goroutine and reports whether one took it.
func (p *workerPool) give(t *task) bool {
	select {
	case p.tasks <- t:
		return true
	default:
		return false
	}
}

// wait returns the next request given, or nil when the pool is full or
// closed: the goroutine ends.
func (p *workerPool) wait() *task {
	if p.idle.Add(1) > p.max {
		p.idle.Add(-1)
		return nil
	}
	t := <-p.tasks
	p.idle.Add(-1)
	return t
}

// close ends the waiting goroutines, once nothing more is given.
func (p *workerPool) close() { close(p.tasks) }

// chain does t and each request chained to it, on w.
func (r *Replayer) chain(ctx context.Context, t *task, pendSem *slots, flight chan struct{}, wg *sync.WaitGroup, w *worker) {
	for t != nil {
		r.do(ctx, t, flight, w)
		if t.line != nil {
			t.line.done(t)
		}
		next := r.complete(t.ss, &t.pending)
		if next == nil {
			// The chain ends: the figures must hold its results before
			// the dispatcher learns the request is done.
			w.idle()
		}
		if t.ss.active.Add(-1) == 0 && r.sessSem != nil {
			_ = r.sessSem.Release()
		}
		pendSem.release()
		wg.Done()
		t = next
	}
}

// worker is what one goroutine keeps from one request of its chain to
// the next.
type worker struct {
	r *Replayer
	// res serves every request: observers do not keep it.
	res Result
	// conn is the connection of the last request, kept while the chain
	// runs without a wait, as a client keeps its connection for its next
	// request; taking one from the shared pool and giving it back were
	// two turns of a lock every request's goroutine contends for.
	conn *wireConn
	// batch holds what is not yet in the run's figures (see report).
	batch *batch
	// wire is the request on the wire, and its status when that is all
	// it reads: one per worker, not one per request.
	wire wireRequest
	// h2 is wire as an HTTP/2 stream (see h2Request): the connection
	// reads it no more once the stream's round trip returns.
	h2 wire.H2Request
}

// batch is what a worker gathers for the run's figures between two
// flushes: its results (which the per-second series reads as well) and
// the figures taken at each send.
type batch struct {
	results []Result
	sends   []sendRecord
}

const batchSize = 32

// idle gives the kept connection back and records the results it holds
// before the worker waits or ends.
func (w *worker) idle() {
	if w.conn != nil {
		w.r.wire.put(w.conn)
		w.conn = nil
	}
	w.flush()
}

// report records a result in the run's figures and passes it on (see
// observe). The figures are gathered in a batch: recording each result
// under the figures' locks, which every request's goroutine contends
// for, cost a tenth of a request at --speed max. A worker that runs
// requests back to back records a batch at once; one that is about to
// wait records what it holds first (see idle), so progress lines lag by
// no more than the requests a worker is running.
func (w *worker) report(res *Result) {
	b := w.take()
	b.results = append(b.results, *res)
	w.r.observe(res)
	if len(b.results) == batchSize {
		w.flush()
	}
}

// sent notes the figures taken as a request goes (see sendStats.sent).
func (w *worker) sent(rec sendRecord) {
	b := w.take()
	b.sends = append(b.sends, rec)
	if len(b.sends) == batchSize {
		w.flush()
	}
}

func (w *worker) take() *batch {
	if w.batch == nil {
		w.batch = batches.Get().(*batch)
	}
	return w.batch
}

// flush records the batch.
func (w *worker) flush() {
	b := w.batch
	if b == nil {
		return
	}
	if len(b.sends) > 0 {
		w.r.sends.record(b.sends)
	}
	if len(b.results) > 0 {
		w.r.rec.Results(b.results)
		for _, o := range w.r.o.observers {
			for i := range b.results {
				o.Observe(&b.results[i])
			}
		}
		w.r.st.recordAll(b.results)
	}
	clear(b.results)
	b.results, b.sends = b.results[:0], b.sends[:0]
	batches.Put(b)
	w.batch = nil
}

// batches holds batches for workers that have figures to record, so that
// the many waiting workers of a paced replay hold none.
var batches = sync.Pool{New: func() any {
	return &batch{
		results: make([]Result, 0, batchSize),
		sends:   make([]sendRecord, 0, batchSize),
	}
}}

// do waits for the request's order and an in-flight slot, sends it, and
// learns the live values of its response.
func (r *Replayer) do(ctx context.Context, t *task, flight chan struct{}, w *worker) {
	res := &w.res
	it, ss, p, due := t.it, t.ss, &t.pending, t.due
	ex := it.ex
	*res = Result{
		Session: it.key, Method: ex.Request.Method, Offset: it.offset, Due: due,
		Route: it.route, RecordedStatus: ex.Response.Status, Blocked: t.chained,
	}
	// A dependency's channel is always closed, also when the replay stops
	// (its goroutine returns and completes it), so the wait needs no
	// select on the shared stop channels: thousands of waiters on those
	// would contend for their locks.
	for _, d := range t.deps {
		if wait(ss, d, w) {
			res.Blocked = true
		}
	}
	// A dependency is a pointer into another task: kept, it would hold
	// that task, which holds its own dependencies, and so the session's
	// whole history.
	t.deps, t.dep1[0] = nil, nil
	if a := t.after; a != nil {
		if wait(a.ss, &a.pending, w) {
			res.Blocked = true
		}
		t.after = nil
	}
	if t.pipe != nil {
		w.idle()
		t.line.waitWritten(t.pipe)
	}
	if r.stopped() || ctx.Err() != nil {
		w.report(res)
		return
	}
	res.Ready = time.Now()

	req, send := r.prepare(t, res, w)
	if !send {
		w.report(res)
		return
	}
	wr := &w.wire
	err := r.build(wr, &req, ex)
	// The live response is read for what learning and comparing use;
	// when its recorded one issued nothing, the status is all it needs.
	wr.StatusOnly = len(p.fields) == 0 && r.o.compare == nil && !r.learnsGRPC(ex)
	if err != nil {
		res.Err, res.ErrKind = err, ErrKindOther
		res.Sent = time.Now()
		res.Done = res.Sent
		r.learnNothing(t)
		w.report(res)
		return
	}
	// Ready is a clock reading taken since, so a due time not after it
	// has passed without reading the clock again: at --speed max every
	// request's due time has (two clock reads a request).
	early := due.After(res.Ready) && time.Until(due) > 0
	if t.line != nil && early {
		// The recorded client had its connection before its first
		// byte: dial in the lead, not after the due time. A failure
		// shows when the request is written, which dials again.
		_ = t.line.open(ctx)
	}
	if !r.await(ctx, due, early, flight, w) {
		w.report(res)
		return
	}
	defer func() { <-flight }()
	r.transmit(ctx, t, wr, w)
}

// learnNothing tells the session's table that the recorded response of t
// has no live counterpart.
func (r *Replayer) learnNothing(t *task) {
	if t.it.ex.Flags&session.FlagNoResponse == 0 {
		t.ss.table.LearnFields(t.pending.fields, nil)
	}
}

// prepare applies the rejected and uncorrelated policies, the credentials
// and the session's live values to the recorded request. send is false
// when a policy skips it (res says so).
func (r *Replayer) prepare(t *task, res *Result, w *worker) (req session.Request, send bool) {
	it, ss, ex := t.it, t.ss, t.it.ex
	req = ex.Request
	rejected := ex.Response.Status == http.StatusUnauthorized && ex.Flags&session.FlagNoResponse == 0
	if rejected && r.o.rejected != RejectedLive {
		r.st.mu.Lock()
		r.st.corr.Rejected++
		r.st.mu.Unlock()
		if r.o.rejected == RejectedSkip {
			res.Skipped = true
			return req, false
		}
	} else if ss.cred != nil {
		if nr, ok := correlate.ApplyCredentials(&req, *ss.cred); ok {
			req = nr
			r.st.mu.Lock()
			r.st.corr.Credentials++
			r.st.mu.Unlock()
		}
	}
	var rw correlate.Rewrite
	if !rejected || r.o.rejected == RejectedLive {
		req, rw = r.rewrite(t, &req, res, w)
	}
	res.Target = req.Target
	res.Substituted = rw.Substituted
	if len(rw.Orphans) > 0 {
		res.Uncorrelated = true
		ss.mu.Lock()
		if ss.uncorr == "" {
			ss.uncorr = fmt.Sprintf("%s %s carries a value with no live counterpart (request at %v)", ex.Request.Method, ex.Request.Target, it.offset)
		}
		ss.mu.Unlock()
		if r.o.uncorrelated == UncorrelatedSkip {
			res.Skipped = true
			r.learnNothing(t)
			return req, false
		}
	}
	return req, true
}

// rewrite substitutes the live values into req. A value that another
// session's earlier request, still under way, will issue is the order
// rule's data edge across sessions: the request waits for that one to
// complete (an order wait, as for its own session's) and is rewritten
// again with what it learned.
func (r *Replayer) rewrite(t *task, req *session.Request, res *Result, w *worker) (session.Request, correlate.Rewrite) {
	for {
		out, rw := t.ss.table.RewriteAt(req, t.seq)
		if len(rw.Await) == 0 {
			return out, rw
		}
		for _, a := range rw.Await {
			by := a.(*task)
			if wait(by.ss, &by.pending, w) {
				res.Blocked = true
			}
		}
		res.Ready = time.Now()
	}
}

// await sleeps until due, then takes an in-flight slot and the rate
// limiter's leave; early false says the clock has been past due already.
// It returns false, holding no slot, when the replay stopped first;
// otherwise the caller gives the slot back.
func (r *Replayer) await(ctx context.Context, due time.Time, early bool, flight chan struct{}, w *worker) bool {
	if early && time.Until(due) > 0 {
		w.idle()
		if !sleepUntil(due, r.stopCh, ctx.Done()) {
			return false
		}
	}
	select {
	case flight <- struct{}{}: // a free slot: no need to lock the shared stop channels
	default:
		// The --max-inflight cap binds: the summary says so. The wait
		// is for a slot alone, like a dependency's (see do): at --speed
		// max most requests wait here, and a select that also watched
		// the shared stop channels made each of them take those
		// channels' locks twice. A stop or ctx's end lets the requests
		// in flight end (the run waits for them anyway), whose slots
		// then pass from waiter to waiter, each of which sees the stop
		// below.
		r.flightWaits.Add(1)
		w.idle()
		flight <- struct{}{}
		if ctx.Err() != nil {
			<-flight
			return false
		}
	}
	ok := true
	if r.o.limiter != nil {
		w.idle()
		ok = r.o.limiter.Wait(r.issueCtx) == nil
	}
	if ok && r.stopped() { // stopped while waiting at a cap: nothing new goes out
		ok = false
	}
	if !ok {
		<-flight
	}
	return ok
}

// transmit sends the built request, records the send and the response,
// and learns the live values.
func (r *Replayer) transmit(ctx context.Context, t *task, wr *wireRequest, w *worker) {
	res := &w.res
	it, ss, ex := t.it, t.ss, t.it.ex
	// What the response's handling reads of the recorded exchange, read
	// before the send: after it, the exchange is out of the cache again
	// (its Flags' load was two fifths of transmit's own time in perf).
	h2, learns, grpc := r.useH2(ex), ex.Flags&session.FlagNoResponse == 0, r.learnsGRPC(ex)
	if ex.Flags&session.FlagRequestTruncated != 0 {
		r.st.mu.Lock()
		r.st.req.Truncated++
		r.st.mu.Unlock()
	}
	r.inFlight.Add(1)
	res.Sent = time.Now()
	wr.At = res.Sent // the wire's deadlines count from it: one clock read less
	think := time.Duration(-1)
	ss.mu.Lock()
	if ss.firstSent.IsZero() {
		ss.firstSent = res.Sent
	}
	if !ss.lastDone.IsZero() && !res.Sent.Before(ss.lastDone) {
		think = res.Sent.Sub(ss.lastDone)
	}
	ss.mu.Unlock()
	w.sent(r.sends.sent(res.Sent, isRefresh(ex), r.o.pacer.Speed(res.Sent.Sub(time.Unix(0, r.start.Load()))), think))
	var live *session.Response
	var n int64
	var err error
	switch {
	case h2:
		live, n, err = r.sendH2(ctx, t, wr, w)
	case t.line != nil:
		live, n, err = r.sendOn(ctx, t, wr, w)
	default:
		live, n, err = r.send(ctx, wr, w)
	}
	res.BytesIn = n
	res.Done = time.Now()
	r.inFlight.Add(-1)
	ss.mu.Lock()
	if res.Done.After(ss.lastDone) {
		ss.lastDone = res.Done
	}
	ss.mu.Unlock()
	if err != nil {
		res.Err, res.ErrKind = err, errKind(err)
		if ctx.Err() != nil || errors.Is(err, errClientClosed) {
			res.ErrKind = ErrKindCanceled
		}
		if live != nil {
			res.Status = live.Status // a gRPC status that is not OK
		}
		ss.mu.Lock()
		if ss.failed == "" && h2Failed(err, ex) {
			ss.failed = fmt.Sprintf("%s %s: %s: %v", ex.Request.Method, ex.Request.Target, res.ErrKind, err)
		}
		ss.mu.Unlock()
		r.learnNothing(t)
		w.report(res)
		return
	}
	res.Status = live.Status
	if learns {
		// Counted only when there is something to count: an atomic add
		// of 0 a response still took the counter's line from the other
		// goroutines that count.
		n := ss.table.LearnFields(t.pending.fields, live)
		if grpc {
			n += r.learnGRPC(t, live)
		}
		if n > 0 {
			r.st.learned.Add(uint64(n))
		}
		r.compareLive(it, ss, live)
	}
	w.report(res)
}

// observe passes a result to the guard as it comes, and an unsent one's
// due time to the per-second series (report batches the sent ones'). The
// observers get it with the worker's batch (see flush).
func (r *Replayer) observe(res *Result) {
	if !res.Sent.IsZero() {
		if g := r.o.guard; g != nil && res.ErrKind != ErrKindCanceled {
			g.Observe(guard.NewObservation(res.Due, res.Sent, res.Done, res.Status, res.ErrKind))
		}
	} else if !res.Due.IsZero() && !res.Skipped {
		r.rec.Due(res.Due)
	}
}

// isRefresh reports whether the recorded exchange refreshed a token.
func isRefresh(ex *session.Exchange) bool {
	for _, t := range ex.Tokens {
		if t.Kind == session.TokenRefresh {
			return true
		}
	}
	return false
}
