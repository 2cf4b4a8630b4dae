package replay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
)

// maxLearnBody bounds how much of a live response body is kept for
// learning live values; the rest is read and counted, not kept.
const maxLearnBody = 4 << 20

// lead is how long before its due time a request is handed to its
// goroutine, which prepares it (order, substitution, the http.Request) and
// then sleeps until the due time itself: the preparation does not make it
// late.
const lead = 2 * time.Millisecond

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
// it once with Run; Stop, Interrupt and Snapshot may be called from other
// goroutines while it runs.
type Replayer struct {
	o      options
	target *url.URL
	wire   *wireClient  // sends requests as recorded; nil when following redirects
	client *http.Client // net/http's, only to follow redirects

	ran    atomic.Bool
	stopCh chan struct{} // closed by the first Stop
	stop   stopState

	// The run's figures: the report's, the sends', the dues' and the
	// per-second series', each under its own lock, recorded in batches
	// (see worker); start is Unix ns, 0 before Run.
	st       *stats
	sends    *sendStats
	dues     dueCounts
	rec      *seriesRecorder // set by Run
	start    atomic.Int64
	inFlight atomic.Int64
	// flightWaits counts the requests that found --max-inflight full.
	flightWaits atomic.Uint64
	// unlined counts the requests that went on the pool in a
	// recorded-connections run (see onLine).
	unlined atomic.Uint64
	// lives counts what the recorded connections' opens and closes did
	// (connsrec.go).
	lives lifeStats
	// blockedDue is the due time (Unix ns) of the request the dispatcher
	// holds while it waits at a cap, 0 when it waits at none.
	blockedDue atomic.Int64

	issueCtx context.Context // ends when the run stops issuing; set by Run
	sessSem  *ramp.Semaphore
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
	case checkProtocol(o.protocol, u.Scheme) != "":
		return nil, &TargetError{target, checkProtocol(o.protocol, u.Scheme)}
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
			tc = o.tlsConfig(host)
		}
		r.wire = newWireClient(net.JoinHostPort(host, port), tc, o.connectTimeout, o.timeout, o.maxInFlight)
	}
	return r, nil
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

// Run replays src and returns the report. It returns when every request
// has been sent and answered, the replay was stopped (Stop, Interrupt, a
// guard, WithMaxDuration), or ctx ended, which aborts the requests in
// flight too. The error is a *guard.AbortError when a guard stopped the
// run, an *InterruptedError when Interrupt (or ctx ending under a drain
// or a guard) did, a *SourceError when the source failed (with the report
// of what was replayed), or says why the replay could not start.
func (r *Replayer) Run(ctx context.Context, src session.Source) (*Report, error) {
	if !r.ran.CompareAndSwap(false, true) {
		return nil, ErrAlreadyRun
	}
	reqCtx, stopper, releaseStopper := r.startStopper(ctx)
	defer releaseStopper()
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

	// Prepare, then start the clock: the look-ahead window's first fill
	// and the first requests' connections are ready before the first
	// request is due.
	items := newHandoff[*item](256)
	var srcErr error
	var span spanInfo
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		srcErr, span = r.feed(runCtx, src, items)
	}()
	d := r.newDispatcher(runCtx)
	first, more := d.prepare(items)
	start, err := r.startClock(ctx)
	if err != nil {
		cancel()
		<-feedDone
		return nil, err
	}
	d.start = start
	r.start.Store(start.UnixNano())
	r.sends.start = start
	r.dues.start = start
	r.rec = newSeriesRecorder(start)

	timer := time.AfterFunc(r.o.maxDuration, func() {
		r.Stop(fmt.Sprintf("max duration %v reached", r.o.maxDuration))
	})
	defer timer.Stop()
	if r.o.progress != nil {
		go r.progressLoop(runCtx)
	}
	if g := r.o.guard; g != nil {
		go g.Watch(runCtx, DefaultGuardEvery, r.tripped)
	}
	var liveWG sync.WaitGroup
	liveDone := make(chan struct{})
	if len(r.o.monitors) > 0 || r.o.guard != nil {
		liveWG.Add(1)
		go func() {
			defer liveWG.Done()
			r.liveLoop(liveDone)
		}()
	}

	d.dispatch(first, more, items)
	cancel() // unblocks the feeder if the dispatcher stopped early
	<-feedDone
	close(liveDone)
	liveWG.Wait()
	if r.wire != nil {
		r.wire.closeAll() // nothing more goes: the report counts the closes
	}

	rep := r.report(start, span)
	stopErr := r.abort(rep, stopper, start)
	r.verdict(rep)
	if srcErr != nil {
		err := &SourceError{Read: rep.Filtered.Read, Err: srcErr}
		rep.Completed = false
		rep.Failure = err.Error()
		return rep, errors.Join(stopErr, err)
	}
	return rep, stopErr
}

// startClock starts the run's clock once the run is prepared (see
// prepare) and returns its instant, from which the schedule's due times
// count: at once, or at the agreed instant (WithStartAt), after the
// shard's share of the caps is set (see startShard).
func (r *Replayer) startClock(ctx context.Context) (time.Time, error) {
	if err := r.startShard(ctx); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// report makes the run's report from its figures.
func (r *Replayer) report(start time.Time, span spanInfo) *Report {
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
	rep.Connections = r.connReport()
	r.sends.fill(rep)
	rep.Series = r.rec.Series()
	stages := r.o.stages
	if rp := r.o.speedRamp; rp != nil && stages == nil && span.any {
		stages = rp.Plan(span.lastClone)
	} else if r.o.scaleRamp != nil && stages == nil && span.any {
		stages = r.o.scaleRamp.Plan(r.o.pacer.Due(span.lastClone))
	}
	for _, sp := range stages {
		rep.Stages = append(rep.Stages, StageReport{Name: sp.Name, Start: sp.Start.Seconds(), End: sp.End.Seconds(), Value: sp.Value, EndValue: sp.EndValue})
	}
	r.fillLimits(rep)
	r.fillPlan(rep, span)
	if c := r.o.compare; c != nil {
		cr := c.Report()
		rep.Compare = &cr
	}
	if g := r.o.guard; g != nil {
		rep.Guards = g.Rules().String()
	}
	return rep
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
	case q.Scheduled == 0 && rep.Filtered.NeedsHTTP2 > 0:
		rep.Failure = fmt.Sprintf("no request to replay: the recording's %d gRPC calls need HTTP/2 replay, which --protocol h1 leaves out", rep.Filtered.NeedsHTTP2)
	case q.Scheduled == 0:
		rep.Failure = "no request to replay: the recording is empty or the filters left nothing"
	case q.Sent > 0 && float64(q.Errors) > r.o.maxErrorRate*float64(q.Sent):
		rep.Failure = fmt.Sprintf("%d of %d requests failed (%s), above the allowed %.3g%%",
			q.Errors, q.Sent, FormatCounts(rep.Errors), 100*r.o.maxErrorRate)
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
