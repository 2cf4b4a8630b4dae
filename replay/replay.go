package replay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/htmlreport"
	"github.com/reprise-tool/reprise/replay/live"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
)

// maxLearnBody bounds how much of a live response body is kept for
// learning live values; the rest is read and counted, not kept.
const maxLearnBody = 4 << 20

// maxWindowItems bounds the look-ahead window by count, whatever its span.
const maxWindowItems = 200000

// lead is how long before its due time a request is handed to its
// goroutine, which prepares it (order, substitution, the http.Request) and
// then sleeps until the due time itself: the preparation does not make it
// late.
const lead = time.Millisecond

// ErrAlreadyRun is returned by Run on a Replayer that has run before.
var ErrAlreadyRun = errors.New("replayer already ran: make a new one with New")

// TargetError says why a target URL cannot be used.
type TargetError struct {
	Target string
	Reason string
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("target %q: %s", e.Target, e.Reason)
}

// SourceError is a failure to read the recording; the requests read before
// it were replayed.
type SourceError struct {
	Read uint64 // exchanges read before the failure
	Err  error
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("reading the recording after %d exchanges: %v", e.Read, e.Err)
}

func (e *SourceError) Unwrap() error { return e.Err }

// Replayer replays one recording against one target. Make it with New, run
// it once with Run; Stop and Snapshot may be called from other goroutines
// while it runs.
type Replayer struct {
	o      options
	target *url.URL
	wire   *wireClient  // sends requests as recorded; nil when following redirects
	client *http.Client // net/http's, only to follow redirects

	ran      atomic.Bool
	stopOnce sync.Once
	stopCh   chan struct{}
	stopMu   sync.Mutex
	stopWhy  string

	st       *stats
	start    atomic.Int64 // Unix ns, 0 before Run
	inFlight atomic.Int64

	sends    *sendStats
	dues     dueCounts            // requests due per wall second, for the live view
	rec      *htmlreport.Recorder // set by Run
	stopper  atomic.Pointer[guard.Stopper]
	issueCtx context.Context // ends when the run stops issuing; set by Run
	sessSem  *ramp.Semaphore
	tripMu   sync.Mutex
	trip     *guard.Trip
	// blockedDue is the due time (Unix ns) of the request the dispatcher
	// holds while it waits at a cap, 0 when it waits at none.
	blockedDue atomic.Int64
}

// New returns a Replayer that sends to target, an http:// or https:// URL
// naming the host and port (and optionally a path prefix put before every
// recorded path).
func New(target string, opts ...Option) (*Replayer, error) {
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(target)
	switch {
	case target == "":
		return nil, &TargetError{target, "no target given: name one explicitly, e.g. http://127.0.0.1:8080"}
	case err != nil:
		return nil, &TargetError{target, err.Error()}
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &TargetError{target, "want an http:// or https:// URL, e.g. http://127.0.0.1:8080"}
	case u.Host == "":
		return nil, &TargetError{target, "no host: write it as http://host:port"}
	case u.RawQuery != "" || u.Fragment != "":
		return nil, &TargetError{target, "a target takes no query or fragment"}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	r := &Replayer{o: o, target: u, stopCh: make(chan struct{}), st: newStats(), sends: newSendStats()}
	r.sessSem = ramp.NewSemaphore(o.maxSessions)
	if o.followRedirect {
		r.client = r.newClient()
	} else {
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		var tc *tls.Config
		if u.Scheme == "https" {
			tc = &tls.Config{ServerName: host, InsecureSkipVerify: o.insecure, NextProtos: []string{"http/1.1"}} //nolint:gosec // opt-in --insecure
		}
		r.wire = newWireClient(net.JoinHostPort(host, port), tc, o.connectTimeout, o.timeout, o.maxInFlight)
	}
	return r, nil
}

// Stop stops issuing new requests; requests in flight finish within their
// timeout and Run then returns its report, whose Stopped field holds
// reason. Only the first call counts.
func (r *Replayer) Stop(reason string) {
	r.stopOnce.Do(func() {
		if reason == "" {
			reason = "stopped"
		}
		r.stopMu.Lock()
		r.stopWhy = reason
		r.stopMu.Unlock()
		close(r.stopCh)
		if s := r.stopper.Load(); s != nil {
			s.Stop(errors.New(reason)) // starts the drain
		}
	})
}

// tripped stops the run for a guard's trip.
func (r *Replayer) tripped(t guard.Trip) {
	if r.stopped() {
		// Already stopping (an interrupt, the end of --max-duration): a
		// rule that holds during the drain is not what stopped the run.
		return
	}
	r.tripMu.Lock()
	if r.trip == nil {
		r.trip = &t
	}
	r.tripMu.Unlock()
	if r.o.metrics != nil {
		r.o.metrics.SetAborted(t.RuleText)
	}
	if s := r.stopper.Load(); s != nil {
		s.Stop(&guard.AbortError{Trip: t})
	}
	r.Stop("guard " + t.RuleText + ": " + t.Reason())
}

// InterruptedError is returned by Run when SIGINT or SIGTERM (WithSignals,
// or the caller's context ending under WithDrainTimeout) stopped it. The
// report is complete up to the stop. Its exit code is 130, the shell's
// for an interrupted command.
type InterruptedError struct{ Cause error }

func (e *InterruptedError) Error() string {
	return "replay interrupted (" + e.Cause.Error() + "): no new request was sent after it; the report covers the run up to the stop"
}
func (e *InterruptedError) Unwrap() error { return e.Cause }

func (r *Replayer) stopReason() string {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	return r.stopWhy
}

// Snapshot returns the figures so far.
func (r *Replayer) Snapshot() Snapshot {
	s := r.st.snapshot()
	if st := r.start.Load(); st != 0 {
		s.Elapsed = time.Since(time.Unix(0, st))
	}
	s.InFlight = r.inFlight.Load()
	return s
}

// item is one request to schedule: an exchange for one clone of a session.
type item struct {
	ex     *session.Exchange
	key    string // session key, "S" or "S#k"
	base   string // the recording's session key
	clone  int
	offset time.Duration // due position in the recording (clone shift included)
	route  string        // see Route
	start  int64         // recorded request start, Unix ns
	end    int64         // recorded response end, Unix ns; 0 when it never completed
	seq    uint64
}

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

// Run replays src and returns the report. It returns when every request
// has been sent and answered, the replay was stopped, or ctx ended. The
// error is non-nil when the source failed (a *SourceError, with the report
// of what was replayed) or the replay could not start.
func (r *Replayer) Run(ctx context.Context, src session.Source) (*Report, error) {
	if !r.ran.CompareAndSwap(false, true) {
		return nil, ErrAlreadyRun
	}
	start := time.Now()
	r.start.Store(start.UnixNano())
	r.sends.start = start
	r.dues.start = start
	r.rec = htmlreport.NewRecorder(start)
	rep := &Report{
		Version: ReportVersion,
		Target:  r.target.String(),
		Speed:   fmt.Sprint(r.o.pacer),
		Scale:   r.o.scale,
		Labels:  r.o.labels,
		Start:   start.UTC(),
	}
	if r.o.scaleRamp != nil {
		rep.Speed += " scale " + r.o.scaleRamp.String()
	}

	// With a drain, the caller's context ending is an orderly stop: the
	// requests in flight run on the stopper's InFlight context, which
	// ends only when the drain is over or a second signal comes.
	reqCtx := ctx
	var stopper *guard.Stopper
	finished := make(chan struct{})
	defer close(finished)
	if r.o.drainSet || len(r.o.signals) > 0 || r.o.guard != nil {
		drain := guard.DefaultDrain
		if r.o.drainSet {
			drain = r.o.drain
		}
		stopper = guard.NewStopper(ctx, drain)
		defer stopper.Close()
		if len(r.o.signals) > 0 {
			stopper.NotifySignals(r.o.signals...)
		}
		reqCtx = stopper.InFlight()
		r.stopper.Store(stopper)
		go func() {
			select {
			case <-stopper.Issue().Done():
				if cause := context.Cause(stopper.Issue()); cause != nil && !errors.Is(cause, guard.ErrFinished) {
					if m := r.o.metrics; m != nil && (errors.Is(cause, guard.ErrInterrupted) || ctx.Err() != nil) {
						m.SetAborted("interrupt")
					}
					r.Stop(cause.Error())
				}
			case <-finished:
			}
		}()
	}

	runCtx, cancel := context.WithCancel(reqCtx)
	defer cancel()
	issueCtx, stopIssue := context.WithCancel(runCtx)
	defer stopIssue()
	r.issueCtx = issueCtx
	if r.wire != nil {
		// Cancelling the requests' context aborts the requests in flight.
		defer context.AfterFunc(reqCtx, r.wire.closeAll)()
		defer r.wire.closeAll()
	}
	timer := time.AfterFunc(r.o.maxDuration, func() {
		r.Stop(fmt.Sprintf("max duration %v reached", r.o.maxDuration))
	})
	defer timer.Stop()
	go func() {
		select {
		case <-runCtx.Done():
			if stopper == nil && ctx.Err() != nil {
				r.Stop("canceled: " + context.Cause(ctx).Error())
			}
		case <-r.stopCh:
			stopIssue()
		}
	}()
	if r.o.progress != nil {
		go r.progressLoop(runCtx)
	}
	if g := r.o.guard; g != nil {
		go g.Watch(runCtx, DefaultGuardEvery, r.tripped)
	}
	var liveWG sync.WaitGroup
	liveDone := make(chan struct{})
	if r.o.live != nil || r.o.metrics != nil || r.o.guard != nil {
		liveWG.Add(1)
		go func() {
			defer liveWG.Done()
			r.liveLoop(liveDone)
		}()
	}

	items := newHandoff[*item](1024)
	var srcErr error
	var span spanInfo
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		srcErr, span = r.feed(runCtx, src, items)
	}()
	r.dispatch(runCtx, start, items)
	cancel() // unblocks the feeder if the dispatcher stopped early
	<-feedDone
	close(liveDone)
	liveWG.Wait()

	end := time.Now()
	rep.End = end.UTC()
	r.st.fill(rep)
	if !r.st.last.IsZero() {
		rep.DurationMS = msf(r.st.last.Sub(start))
	} else {
		rep.DurationMS = msf(end.Sub(start))
	}
	rep.SpanMS = msf(span.last - span.first)
	if !r.st.lastSent.IsZero() {
		rep.LastSendMS = msf(r.st.lastSent.Sub(start))
	}
	if !isMax(r.o.pacer) && span.any {
		rep.ExpectedMS = msf(r.o.pacer.Due(span.lastClone))
	}
	rep.Stopped = r.stopReason()
	r.sends.fill(rep)
	rep.Series = r.rec.Series()
	stages := r.o.stages
	if rp, ok := r.o.pacer.(*ramp.Ramp); ok && stages == nil && span.any {
		stages = rp.Plan(span.lastClone)
	} else if r.o.scaleRamp != nil && stages == nil && span.any {
		stages = r.o.scaleRamp.Plan(r.o.pacer.Due(span.lastClone))
	}
	for _, sp := range stages {
		rep.Stages = append(rep.Stages, StageReport{Name: sp.Name, Start: sp.Start.Seconds(), End: sp.End.Seconds(), Value: sp.Value, EndValue: sp.EndValue})
	}
	r.fillLimits(rep)
	if c := r.o.compare; c != nil {
		cr := c.Report()
		rep.Compare = &cr
	}
	if g := r.o.guard; g != nil {
		rep.Guards = g.Rules().String()
	}
	var stopErr error
	r.tripMu.Lock()
	trip := r.trip
	r.tripMu.Unlock()
	switch {
	case trip != nil:
		rep.Abort = &Abort{
			Kind: AbortGuard, Rule: trip.RuleText, Reason: trip.Reason(), At: trip.At.UTC(), AtS: trip.At.Sub(start).Seconds(),
			Value: trip.Value, Threshold: trip.Threshold, WindowS: trip.Window.Seconds(), WindowRequests: trip.Requests,
		}
		stopErr = &guard.AbortError{Trip: *trip}
	case stopper != nil && (errors.Is(stopper.Cause(), guard.ErrInterrupted) || errors.Is(stopper.Cause(), guard.ErrInterruptedTwice) ||
		(ctx.Err() != nil && stopper.Cause() != nil && stopper.Cause().Error() == context.Cause(ctx).Error())):
		// The first signal, or the caller's context ending (the CLI's
		// root context ends on SIGINT, with its own cause).
		at := stopper.StoppedAt()
		rep.Abort = &Abort{Kind: AbortInterrupt, Rule: "interrupt", Reason: stopper.Cause().Error(), At: at.UTC(), AtS: at.Sub(start).Seconds()}
		stopErr = &InterruptedError{Cause: stopper.Cause()}
	}
	if rep.Abort != nil && stopper != nil {
		k := stopper.Killed()
		rep.Abort.Abandoned = k != nil && !errors.Is(k, guard.ErrFinished)
	}
	r.verdict(rep)
	if srcErr != nil {
		err := &SourceError{Read: rep.Filtered.Read, Err: srcErr}
		rep.Completed = false
		rep.Failure = err.Error()
		return rep, errors.Join(stopErr, err)
	}
	return rep, stopErr
}

// fillLimits reports the caps and their waits.
func (r *Replayer) fillLimits(rep *Report) {
	rep.Limits.MaxInFlight = r.o.maxInFlight
	rep.Limits.MaxSessions = r.o.maxSessions
	wc := func(w ramp.WaitStats) WaitCount {
		return WaitCount{Waited: w.Waited, TotalMS: msf(w.Total), MaxMS: msf(w.Max)}
	}
	if t, ok := r.o.limiter.(*ramp.Throttle); ok && t != nil {
		rep.Limits.RateWaits = wc(t.Stats())
	}
	rep.Limits.RatePerSecond = r.o.ratePerSecond
	if r.sessSem != nil {
		rep.Limits.SessionWaits = wc(r.sessSem.Stats())
	}
}

func (r *Replayer) verdict(rep *Report) {
	q := rep.Requests
	switch {
	case rep.Stopped != "":
		rep.Failure = "stopped early: " + rep.Stopped
	case q.Scheduled == 0:
		rep.Failure = "no request to replay: the recording is empty or the filters left nothing"
	case q.Sent > 0 && float64(q.Errors) > r.o.maxErrorRate*float64(q.Sent):
		rep.Failure = fmt.Sprintf("%d of %d requests failed (%s), above the allowed %.3g%%",
			q.Errors, q.Sent, codes(rep.Errors), 100*r.o.maxErrorRate)
	case q.Skipped > 0 && float64(q.Skipped) > r.o.maxErrorRate*float64(q.Scheduled):
		// Skipped requests were never replayed: a run that skipped more
		// than the allowed error share did not reproduce the recording.
		rep.Failure = fmt.Sprintf("%d of %d requests were skipped as uncorrelated: their session's login or token has no live counterpart "+
			"(were the recording's passwords redacted? give --credentials FILE; or send them as recorded with --uncorrelated send)",
			q.Skipped, q.Scheduled)
	default:
		rep.Completed = true
	}
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *Replayer) progressLoop(ctx context.Context) {
	t := time.NewTicker(r.o.progressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.stopCh:
			return
		case <-t.C:
			fmt.Fprintln(r.o.progress, r.Snapshot())
		}
	}
}

// spanInfo is what the feeder learned of the recording's extent.
type spanInfo struct {
	any         bool
	first, last time.Duration // offsets of the first and last base request
	lastClone   time.Duration // offset of the last request, clone shift included
}

// itemHeap orders items by offset, then by the order they were read. Its
// push and pop are container/heap's algorithms without the interface
// calls, which cost the feeder a twentieth of a request at --speed max.
type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) less(i, j int) bool {
	if h[i].offset != h[j].offset {
		return h[i].offset < h[j].offset
	}
	return h[i].seq < h[j].seq
}

func (h *itemHeap) push(it *item) {
	*h = append(*h, it)
	s := *h
	for j := len(s) - 1; j > 0; {
		i := (j - 1) / 2
		if !s.less(j, i) {
			break
		}
		s[i], s[j] = s[j], s[i]
		j = i
	}
}

func (h *itemHeap) pop() *item {
	s := *h
	n := len(s) - 1
	top := s[0]
	s[0] = s[n]
	s[n] = nil
	s = s[:n]
	for i := 0; ; {
		j := 2*i + 1
		if j >= n {
			break
		}
		if k := j + 1; k < n && s.less(k, j) {
			j = k
		}
		if !s.less(j, i) {
			break
		}
		s[i], s[j] = s[j], s[i]
		i = j
	}
	*h = s
	return top
}

// feed reads src, filters, sorts by start time through the look-ahead
// window, makes clones and sends items in offset order. It closes out.
func (r *Replayer) feed(ctx context.Context, src session.Source, out *handoff[*item]) (srcErr error, span spanInfo) {
	defer out.close()
	var (
		window   lookahead // base items by recorded start (offset holds start - origin0)
		clones   itemHeap  // items ready but for clones' shift
		seq      uint64
		lastRaw  int64 // latest start read
		origin   = r.o.origin
		haveOrig = origin != 0
		sampled  = make(map[string]bool)
		firstOff = make(map[string]time.Duration) // under a scale ramp: each session's first offset
		start0   time.Duration                    // offset of the first request kept
		eof      bool
	)
	send := func(it *item) bool {
		if !out.put(it, r.stopCh, ctx.Done()) {
			return false
		}
		r.st.scheduled.Add(1)
		return true
	}
	// release moves the earliest window item through the range and
	// session filters into the clone heap, then sends what is due.
	release := func(it *item) bool {
		if !haveOrig {
			origin, haveOrig = it.start, true
		}
		off := time.Duration(it.start - origin)
		if off < 0 { // came later than the window could sort: due at once
			off = 0
		}
		if off < r.o.from || (r.o.to != 0 && off > r.o.to) {
			r.st.mu.Lock()
			r.st.filtered.ByRange++
			r.st.mu.Unlock()
			return true
		}
		if r.o.sessions > 0 && !sampled[it.base] {
			if len(sampled) >= r.o.sessions {
				r.st.mu.Lock()
				r.st.filtered.BySessions++
				r.st.mu.Unlock()
				return true
			}
			sampled[it.base] = true
		}
		if !span.any || off < span.first {
			span.first = off
		}
		if !span.any || off > span.last {
			span.last = off
		}
		if !span.any {
			// The replay starts with the first request kept, not with the
			// recording's start: an idle lead-in is not waited out.
			start0 = off
		}
		span.any = true
		off -= start0
		first, seen := firstOff[it.base]
		if r.o.scaleRamp != nil && !seen {
			first = off
			firstOff[it.base] = off
		}
		for k := 0; k < r.o.scale; k++ {
			if k > 0 && r.o.scaleRamp != nil {
				// Clone k takes part only if its session begins once the
				// ramp has reached it: whole sessions, never cut.
				from, ok := r.o.scaleRamp.ActiveFrom(k)
				if !ok || r.o.pacer.Due(first+time.Duration(k)*r.o.stagger) < from {
					r.st.mu.Lock()
					r.st.filtered.ByScaleRamp++
					r.st.mu.Unlock()
					continue
				}
			}
			c := it // the window is done with it: clone 0 reuses it
			if k > 0 {
				cp := *it
				c = &cp
			}
			c.clone = k
			c.offset = off + time.Duration(k)*r.o.stagger
			if r.o.scale > 1 {
				c.key = fmt.Sprintf("%s#%d", it.base, k)
			}
			c.seq = seq
			seq++
			clones.push(c)
			if c.offset > span.lastClone {
				span.lastClone = c.offset
			}
		}
		for clones.Len() > 0 && clones[0].offset <= off {
			if !send(clones.pop()) {
				return false
			}
		}
		return true
	}

	for !eof {
		if ctx.Err() != nil || r.stopped() {
			return nil, span
		}
		ex, err := src.Next()
		if err == io.EOF {
			eof = true
			break
		}
		if err != nil {
			srcErr = err
			break
		}
		r.st.read.Add(1)
		if !r.keep(ex) {
			continue
		}
		it := &item{ex: ex, base: sessionKey(ex), start: ex.Timing.RequestStart, end: recordedEnd(ex), seq: seq}
		seq++
		it.key = it.base
		if it.start == 0 { // no timing: place it at the latest start read
			it.start = lastRaw
			if it.end == 0 && ex.Flags&session.FlagNoResponse == 0 {
				it.end = it.start
			}
		}
		if it.start > lastRaw {
			lastRaw = it.start
		}
		it.offset = time.Duration(it.start)
		window.push(it)
		for window.Len() > 0 && (time.Duration(lastRaw)-window.peek().offset > r.o.window || window.Len() > maxWindowItems) {
			if !release(window.pop()) {
				return nil, span
			}
		}
	}
	for window.Len() > 0 {
		if !release(window.pop()) {
			return srcErr, span
		}
	}
	for clones.Len() > 0 {
		if !send(clones.pop()) {
			return srcErr, span
		}
	}
	return srcErr, span
}

func (r *Replayer) stopped() bool {
	select {
	case <-r.stopCh:
		return true
	default:
		return false
	}
}

// keep applies the method and path filters, counting what they drop.
func (r *Replayer) keep(ex *session.Exchange) bool {
	req := &ex.Request
	var drop *uint64
	switch {
	case req.Method == "" || req.Target == "" || req.Target == "*":
		drop = &r.st.filtered.Unsendable
	case r.o.methods != nil && !r.o.methods[strings.ToUpper(req.Method)]:
		drop = &r.st.filtered.ByMethod
	case !r.pathKept(req.Target):
		drop = &r.st.filtered.ByPath
	}
	if drop == nil {
		return true
	}
	r.st.mu.Lock()
	*drop++
	r.st.mu.Unlock()
	return false
}

func (r *Replayer) pathKept(target string) bool {
	for _, re := range r.o.exclude {
		if re.MatchString(target) {
			return false
		}
	}
	if len(r.o.include) == 0 {
		return true
	}
	for _, re := range r.o.include {
		if re.MatchString(target) {
			return true
		}
	}
	return false
}

// sessionKey is the exchange's session, or its connection when the
// identity tracker left none.
func sessionKey(ex *session.Exchange) string {
	if ex.Session != "" {
		return ex.Session
	}
	return "conn:" + strconv.FormatUint(ex.Conn.ID, 10)
}

// recordedEnd is when the recorded exchange completed, 0 if it never did.
func recordedEnd(ex *session.Exchange) int64 {
	if ex.Flags&session.FlagNoResponse != 0 {
		return 0
	}
	t := ex.Timing
	for _, v := range []int64{t.ResponseEnd, t.ResponseStart, t.RequestEnd, t.RequestStart} {
		if v != 0 {
			return v
		}
	}
	return 0
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

// run does t, then each request chained to the one just completed, and
// releases each one's slots as its goroutine of its own used to.
func (r *Replayer) run(ctx context.Context, t *task, pendSem *slots, flight chan struct{}, wg *sync.WaitGroup) {
	w := &worker{r: r}
	for t != nil {
		r.do(ctx, t, flight, w)
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
}

// batch is what a worker gathers for the run's figures between two
// flushes: its results, their entries in the per-second series, and the
// figures taken at each send.
type batch struct {
	results []Result
	series  []htmlreport.Request
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
	if !res.Sent.IsZero() {
		b.series = append(b.series, htmlreport.Request{
			Due: res.Due, Sent: res.Sent, Done: res.Done,
			Failed: res.Err != nil || res.Status >= 500, Timeout: res.ErrKind == ErrKindTimeout,
		})
	}
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
	if len(b.series) > 0 {
		w.r.rec.Requests(b.series)
	}
	if len(b.results) > 0 {
		w.r.st.recordAll(b.results)
	}
	clear(b.results)
	b.results, b.series, b.sends = b.results[:0], b.series[:0], b.sends[:0]
	batches.Put(b)
	w.batch = nil
}

// batches holds batches for workers that have figures to record, so that
// the many waiting workers of a paced replay hold none.
var batches = sync.Pool{New: func() any {
	return &batch{
		results: make([]Result, 0, batchSize),
		series:  make([]htmlreport.Request, 0, batchSize),
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
	learnNothing := func() {
		if ex.Flags&session.FlagNoResponse == 0 {
			ss.table.LearnFields(p.fields, nil)
		}
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
	if r.stopped() || ctx.Err() != nil {
		w.report(res)
		return
	}
	res.Ready = time.Now()

	req := ex.Request
	rejected := ex.Response.Status == http.StatusUnauthorized && ex.Flags&session.FlagNoResponse == 0
	if rejected && r.o.rejected != RejectedLive {
		r.st.mu.Lock()
		r.st.corr.Rejected++
		r.st.mu.Unlock()
		if r.o.rejected == RejectedSkip {
			res.Skipped = true
			w.report(res)
			return
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
		req, rw = ss.table.Rewrite(&req)
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
			learnNothing()
			w.report(res)
			return
		}
	}
	wr := &w.wire
	err := r.build(wr, &req, ex)
	// The live response is read for what learning and comparing use;
	// when its recorded one issued nothing, the status is all it needs.
	wr.StatusOnly = len(p.fields) == 0 && r.o.compare == nil
	if err != nil {
		res.Err, res.ErrKind = err, ErrKindOther
		res.Sent = time.Now()
		res.Done = res.Sent
		learnNothing()
		w.report(res)
		return
	}

	if wait := time.Until(due); wait > 0 {
		w.idle()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.stopCh:
			t.Stop()
			w.report(res)
			return
		case <-ctx.Done():
			t.Stop()
			w.report(res)
			return
		}
	}
	select {
	case flight <- struct{}{}: // a free slot: no need to lock the shared stop channels
	default:
		w.idle()
		select {
		case flight <- struct{}{}:
		case <-r.stopCh:
			w.report(res)
			return
		case <-ctx.Done():
			w.report(res)
			return
		}
	}
	defer func() { <-flight }()
	if r.o.limiter != nil {
		w.idle()
		if err := r.o.limiter.Wait(r.issueCtx); err != nil {
			w.report(res)
			return
		}
	}
	if r.stopped() { // stopped while waiting at a cap: nothing new goes out
		w.report(res)
		return
	}
	if ex.Flags&session.FlagRequestTruncated != 0 {
		r.st.mu.Lock()
		r.st.req.Truncated++
		r.st.mu.Unlock()
	}
	r.inFlight.Add(1)
	res.Sent = time.Now()
	think := time.Duration(-1)
	ss.mu.Lock()
	if ss.firstSent.IsZero() {
		ss.firstSent = res.Sent
	}
	if !ss.lastDone.IsZero() && !res.Sent.Before(ss.lastDone) {
		think = res.Sent.Sub(ss.lastDone)
	}
	ss.mu.Unlock()
	w.sent(r.sends.sent(res.Sent, isRefresh(ex), speedAt(r.o.pacer, res.Sent.Sub(time.Unix(0, r.start.Load()))), think))
	live, n, err := r.send(ctx, wr, w)
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
		ss.mu.Lock()
		if ss.failed == "" {
			ss.failed = fmt.Sprintf("%s %s: %s: %v", ex.Request.Method, ex.Request.Target, res.ErrKind, err)
		}
		ss.mu.Unlock()
		learnNothing()
		w.report(res)
		return
	}
	res.Status = live.Status
	if ex.Flags&session.FlagNoResponse == 0 {
		r.st.learned.Add(uint64(ss.table.LearnFields(p.fields, live)))
		r.compareLive(it, ss, live)
	}
	w.report(res)
}

// observe passes a result to the guard, the metrics and the observers,
// as it comes, and an unsent one's due time to the per-second series
// (report batches the sent ones').
func (r *Replayer) observe(res *Result) {
	if !res.Sent.IsZero() {
		if g := r.o.guard; g != nil && res.ErrKind != ErrKindCanceled {
			g.Observe(guard.NewObservation(res.Due, res.Sent, res.Done, res.Status, res.ErrKind))
		}
		if m := r.o.metrics; m != nil {
			m.Observe(live.NewRequest(res.Route, res.Due, res.Sent, res.Done, res.Status, res.ErrKind))
		}
	} else if !res.Due.IsZero() && !res.Skipped {
		r.rec.Due(res.Due)
	}
	for _, o := range r.o.observers {
		o.Observe(res)
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

// liveLoop fills the live display and the metrics' gauges every second
// until done is closed, then shows the final state.
func (r *Replayer) liveLoop(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			if r.o.live != nil {
				r.o.live.Finish(r.liveSnapshot(time.Now()))
			}
			return
		case now := <-t.C:
			s := r.liveSnapshot(now)
			if bd := r.blockedDue.Load(); bd != 0 && !r.stopped() {
				// A cap that holds the schedule back shows as lag at
				// once, before the late requests are sent.
				if b := now.Sub(time.Unix(0, bd)); b > 0 {
					s.Lag = max(s.Lag, b)
					if g := r.o.guard; g != nil {
						g.Backlog(now, b)
					}
				}
			}
			if r.o.live != nil {
				r.o.live.Update(s)
			}
			if m := r.o.metrics; m != nil {
				m.SetInFlight(s.InFlight)
				m.SetStage(s.StageIndex, s.Stage, s.Speed)
				m.SetBacklog(s.Lag)
			}
		}
	}
}

// liveSnapshot is the state shown each second. Percentiles and lag are
// the guard window's (the last --abort-window) when a guard runs, the
// whole run's otherwise.
func (r *Replayer) liveSnapshot(now time.Time) live.Snapshot {
	s := r.Snapshot()
	el := now.Sub(time.Unix(0, r.start.Load()))
	ls := live.Snapshot{
		Elapsed: el, Total: r.o.liveTotal, Speed: speedAt(r.o.pacer, el),
		Sent: s.Sent, InFlight: int(s.InFlight), Errors: s.Errors,
		RPS: float64(r.sends.recent(now)), P99: s.LatP99, Lag: s.LagP99,
		IntendedRPS: float64(r.dues.recent(now)), // none under --speed max, where due is when sent
	}
	if ls.Completed = s.Sent; s.InFlight > 0 && uint64(s.InFlight) <= s.Sent {
		ls.Completed = s.Sent - uint64(s.InFlight)
	}
	if st, ok := r.o.pacer.(stager); ok {
		i, name := st.StageAt(el)
		ls.StageIndex, ls.Stage, ls.Stages = i+1, name, len(r.o.stages)
		if rp, ok := st.(*ramp.Ramp); ok && ls.Stages == 0 {
			ls.Stages = len(rp.Stages())
		}
	} else if sr := r.o.scaleRamp; sr != nil {
		i, name := sr.StageAt(el)
		ls.StageIndex, ls.Stage, ls.Stages = i+1, name, len(sr.Stages())
	}
	if g := r.o.guard; g != nil {
		w := g.Window().Stats(now)
		ls.P50, ls.P99, ls.Lag = w.P50, w.P99, w.Lag
	}
	if r.stopped() {
		ls.Stopping = r.stopReason()
	}
	return ls
}
