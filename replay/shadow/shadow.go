package shadow

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/reprise-tool/reprise/replay/compare"
	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
	"github.com/reprise-tool/reprise/session/http2"
	"github.com/reprise-tool/reprise/session/identity"
)

// Defaults for Config fields left zero.
const (
	DefaultQueue       = 64
	DefaultMaxSessions = 10000
	// DefaultMaxQueuedBytes bounds the body bytes waiting in all session
	// queues together.
	DefaultMaxQueuedBytes = 256 << 20
	DefaultMaxInflight    = 64
	DefaultTimeout        = 10 * time.Second
	DefaultNoiseShare     = 0.1
	DefaultNoiseFirst     = 5
	DefaultMaxBody        = 1 << 20
	// idleAfter is how long a session with nothing queued keeps its
	// correlation table.
	idleAfter = 30 * time.Minute
)

// Config says where to mirror and how.
type Config struct {
	// Shadow is the URL of the deployment to mirror to (required), e.g.
	// "http://127.0.0.1:8090". Its path and query must be empty.
	Shadow string
	// Baseline is an optional second, known-good deployment mirrored the
	// same way, whose differences from the real answers are the noise.
	Baseline string
	// Sample is the share of sessions mirrored, in (0, 1]; 0 means 1.
	Sample float64
	// AllowWrites mirrors every method; AllowAuth mirrors logins,
	// refreshes and logouts besides safe methods (see the package doc).
	AllowWrites, AllowAuth bool
	// Rate caps requests per second to the shadow(s); zero means no cap.
	Rate ramp.Rate
	// MaxInflight caps concurrent requests (default 64).
	MaxInflight int
	// Queue bounds each session's queue (default 64); MaxSessions the
	// sessions mirrored at once (default 10000).
	Queue, MaxSessions int
	// MaxQueuedBytes bounds the request and response body bytes waiting
	// in all queues together (default 256 MiB); beyond it exchanges are
	// shed as "queue".
	MaxQueuedBytes int64
	// Abort rules stop the mirror when the shadow is sick (nil: none);
	// AbortWindow is their sliding window (default 10s).
	Abort       guard.Rules
	AbortWindow time.Duration
	// NoiseShare is the share of safe requests sent twice to learn noise
	// (default 0.1; negative for none); NoiseFirst requests of each route
	// are always sent twice (default 5).
	NoiseShare float64
	NoiseFirst int
	// Compare configures the comparison.
	Compare []compare.Option
	// Identity configures the session tracker.
	Identity []identity.Option
	// Timeout bounds each request to the shadow (default 10s); MaxBody
	// the shadow's answer bytes kept for comparison (default 1 MiB).
	Timeout time.Duration
	MaxBody int64
	// Insecure skips TLS certificate checks toward https shadows.
	Insecure bool
	// Record, when set, receives a copy of every exchange read from the
	// source (mirrored or not) as the source gave it, before the mirror's
	// tracker annotates it; the mirror then reads no further and returns
	// its error when a write fails. A capture.Pipe read by capture.Record
	// makes it a recording, redacted and with its own sessions, like any
	// other.
	Record session.Sink
	// Drain is how long the session queues may take to empty after the
	// source ended (default 5s); what is left then is shed as "stopped".
	Drain time.Duration
	// Status is called about once a second with the progress.
	Status func(Stats)
}

// errDrain stops the mirror when its queues did not empty in time.
var errDrain = errors.New("the shadow's queues did not empty within the drain time")

// Summary is what a mirror run did.
type Summary struct {
	Shadow   string         `json:"shadow"`
	Baseline string         `json:"baseline,omitempty"`
	Stats    Stats          `json:"stats"`
	Trip     *guard.Trip    `json:"abort,omitempty"`
	Compare  compare.Report `json:"compare"`
	// Source holds the source's own counters (the proxy's), when the
	// caller that wired the source fills it in; Run leaves it empty.
	Source map[string]uint64 `json:"source,omitempty"`
}

type target struct {
	base   *url.URL
	client *wire.Client
	// h2 carries the exchanges recorded over HTTP/2, gRPC included, as
	// streams of one HTTP/2 connection (h2c to an http:// target, h2 by
	// ALPN to an https:// one), as a pooled replay shares one.
	h2 *wire.H2Client

	// A breaker: after breakAfter failures in a row without an answer
	// the target is taken for down and nothing is sent to it until
	// openUntil; then one request probes it. The pause doubles up to
	// maxPause while it stays down. It keeps a dead shadow from costing
	// the machine (and so the real traffic) a failed connection per
	// mirrored request.
	mu        sync.Mutex
	fails     int
	pause     time.Duration
	openUntil time.Time
	probing   bool
}

const (
	breakAfter = 5
	minPause   = 50 * time.Millisecond
	maxPause   = 2 * time.Second
)

// allow says whether a request may be sent now.
func (t *target) allow(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fails < breakAfter {
		return true
	}
	if now.Before(t.openUntil) || t.probing {
		return false
	}
	t.probing = true
	return true
}

// result records whether a request got an answer.
func (t *target) result(ok bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probing = false
	if ok {
		t.fails, t.pause = 0, 0
		return
	}
	t.fails++
	if t.fails >= breakAfter {
		t.pause = min(max(2*t.pause, minPause), maxPause)
		t.openUntil = now.Add(t.pause)
	}
}

// Mirror mirrors exchanges to the shadow. Make one with New per run.
type Mirror struct {
	cfg      Config
	shadow   *target
	baseline *target
	cmp      *compare.Comparer
	tracker  *identity.Tracker
	guard    *guard.Guard
	throttle *ramp.Throttle
	sem      *ramp.Semaphore
	start    time.Time

	mu       sync.Mutex
	sessions map[string]*sess
	skipped  map[string]uint64
	shed     map[string]uint64
	noiseN   map[string]int // requests seen per route, for noise sampling
	queued   int64          // body bytes waiting in the queues
	swept    time.Time
	hist     *hdrhistogram.Histogram

	seen, sessionsN, unsampled, uncorrelated, sent, errs, s5xx, compared, noise atomic.Uint64
	wg                                                                          sync.WaitGroup
}

type sess struct {
	key      string
	q        chan *session.Exchange
	running  bool
	broken   bool
	ended    bool // logged out: forgotten once its queue is empty
	lastSeen time.Time
	table    *correlate.Table // real -> shadow
	btable   *correlate.Table // real -> baseline
}

// New checks cfg and returns a Mirror.
func New(cfg Config) (*Mirror, error) {
	if cfg.Sample == 0 {
		cfg.Sample = 1
	}
	if cfg.Sample < 0 || cfg.Sample > 1 || cfg.Sample != cfg.Sample {
		return nil, fmt.Errorf("sample %v is outside (0, 1]; give e.g. 10%%", cfg.Sample)
	}
	if cfg.Queue == 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.MaxQueuedBytes == 0 {
		cfg.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.NoiseShare == 0 {
		cfg.NoiseShare = DefaultNoiseShare
	}
	if cfg.NoiseFirst == 0 {
		cfg.NoiseFirst = DefaultNoiseFirst
	}
	if cfg.Drain == 0 {
		cfg.Drain = 5 * time.Second
	}
	if cfg.AbortWindow == 0 {
		cfg.AbortWindow = 10 * time.Second
	}
	if cfg.Queue < 1 || cfg.MaxSessions < 1 || cfg.MaxInflight < 1 || cfg.Timeout < 0 || cfg.MaxBody < 0 || cfg.NoiseShare > 1 {
		return nil, errors.New("queue, max sessions and max inflight must be at least 1, timeout and max body not negative, noise share at most 1")
	}
	m := &Mirror{
		cfg: cfg, sessions: map[string]*sess{}, skipped: map[string]uint64{}, shed: map[string]uint64{},
		noiseN: map[string]int{}, hist: hdrhistogram.New(1, 600_000_000, 2),
		throttle: ramp.NewThrottle(cfg.Rate), sem: ramp.NewSemaphore(cfg.MaxInflight),
	}
	var err error
	if m.shadow, err = newTarget(cfg.Shadow, cfg, "shadow"); err != nil {
		return nil, err
	}
	if cfg.Baseline != "" {
		if m.baseline, err = newTarget(cfg.Baseline, cfg, "baseline"); err != nil {
			return nil, err
		}
	}
	if m.cmp, err = compare.New(cfg.Compare...); err != nil {
		return nil, err
	}
	if m.tracker, err = identity.NewTracker(cfg.Identity...); err != nil {
		return nil, err
	}
	if len(cfg.Abort) > 0 {
		if m.guard, err = guard.New(cfg.Abort, guard.WithWindow(cfg.AbortWindow)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func newTarget(raw string, cfg Config, what string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want an http:// or https:// URL such as http://127.0.0.1:8090", what, raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("%s %q: a path or query is not supported; requests keep their own", what, raw)
	}
	port := u.Port()
	var tc *tls.Config
	if u.Scheme == "https" {
		tc = &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: cfg.Insecure} //nolint:gosec // opt-in Insecure
		if port == "" {
			port = "443"
		}
	} else if port == "" {
		port = "80"
	}
	wc := wire.Config{Addr: net.JoinHostPort(u.Hostname(), port), TLS: tc, ConnectTimeout: 5 * time.Second,
		Timeout: cfg.Timeout, MaxIdle: cfg.MaxInflight, BodyLimit: cfg.MaxBody, KeepReason: true}
	c := wire.New(wc)
	wc.TLS = wire.H2TLSConfig(tc)
	return &target{base: u, client: c, h2: wire.NewH2(wc)}, nil
}

// Run mirrors every exchange src yields until src ends (io.EOF) or ctx
// ends, waits for the session queues to drain (at most the request
// timeout after ctx ended), and returns the summary. A guard trip is
// returned as a *guard.AbortError after the source ended, since the real
// traffic went on.
func (m *Mirror) Run(ctx context.Context, src session.Source) (Summary, error) {
	m.start = time.Now()
	// The source ends when ctx does (the proxy stops serving); the queues
	// then get Drain to empty before issuing stops, and in-flight
	// requests the request timeout after that.
	stopper := guard.NewStopper(context.WithoutCancel(ctx), m.cfg.Timeout)
	defer stopper.Close()
	var bg sync.WaitGroup
	tickDone := make(chan struct{})
	bg.Add(1)
	go func() {
		defer bg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-tickDone:
				return
			case now := <-t.C:
				if m.guard != nil {
					if trip, ok := m.guard.Check(now); ok {
						stopper.Stop(&guard.AbortError{Trip: trip})
					}
				}
				if m.cfg.Status != nil {
					m.cfg.Status(m.Stats())
				}
			}
		}
	}()

	var rerr error
	for {
		x, err := src.Next()
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
		if rerr = m.record(x); rerr != nil {
			break
		}
		m.dispatch(stopper, x)
	}
	drained := make(chan struct{})
	go func() { m.wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(m.cfg.Drain):
		stopper.Stop(errDrain)
		<-drained
	}
	close(tickDone)
	bg.Wait()
	m.shadow.h2.CloseAll()
	if m.baseline != nil {
		m.baseline.h2.CloseAll()
	}
	sum := Summary{Shadow: m.cfg.Shadow, Baseline: m.cfg.Baseline, Stats: m.Stats(), Compare: m.cmp.Report()}
	if m.guard != nil {
		if trip, ok := m.guard.Trip(); ok {
			sum.Trip = &trip
			rerr = errors.Join(rerr, &guard.AbortError{Trip: trip})
		}
	}
	return sum, rerr
}

// record hands the recording a copy of x, since the mirror's tracker and
// session workers go on using x.
func (m *Mirror) record(x *session.Exchange) error {
	if m.cfg.Record == nil {
		return nil
	}
	return m.cfg.Record.WriteExchange(clone(x))
}

func clone(x *session.Exchange) *session.Exchange {
	c := *x
	c.Request.Header = append(session.Headers(nil), x.Request.Header...)
	c.Response.Header = append(session.Headers(nil), x.Response.Header...)
	c.Request.Body = append([]byte(nil), x.Request.Body...)
	c.Response.Body = append([]byte(nil), x.Response.Body...)
	c.Tokens = append([]session.TokenEvent(nil), x.Tokens...)
	c.Warnings = append([]string(nil), x.Warnings...)
	return &c
}

func (m *Mirror) mirror(stopper *guard.Stopper, s *sess, x *session.Exchange) {
	if stopper.Issue().Err() != nil {
		m.count(m.shed, "stopped")
		return
	}
	req, rw := s.table.Rewrite(&x.Request)
	if len(rw.Orphans) > 0 {
		m.uncorrelated.Add(1)
		s.table.Learn(&x.Response, nil)
		return
	}
	route := session.Route(x.Request.Method, x.Request.Target)
	resp := m.send(stopper, m.shadow, x, &req, true)
	s.table.Learn(&x.Response, resp)
	learnGRPC(s.table, x, resp)
	if resp == nil || x.Flags.Incomplete() {
		return
	}
	eq := equivalent(s.table)
	m.cmp.Observe(route, m.cmp.Diff(&x.Response, resp, eq))
	m.compared.Add(1)

	switch {
	case m.baseline != nil:
		breq, brw := s.btable.Rewrite(&x.Request)
		if len(brw.Orphans) > 0 {
			s.btable.Learn(&x.Response, nil)
			return
		}
		bresp := m.send(stopper, m.baseline, x, &breq, false)
		s.btable.Learn(&x.Response, bresp)
		learnGRPC(s.btable, x, bresp)
		if bresp != nil {
			m.cmp.ObserveNoise(route, m.cmp.Diff(&x.Response, bresp, equivalent(s.btable)))
			m.noise.Add(1)
		}
	case safeMethod(x.Request.Method) && !authExchange(x) && m.noiseDue(route):
		again := m.send(stopper, m.shadow, x, &req, true)
		if again != nil {
			m.cmp.ObserveNoise(route, m.cmp.Diff(resp, again, nil))
			m.noise.Add(1)
		}
	}
}

// learnGRPC learns the values of a gRPC answer the target issued in place
// of the recorded ones (a token, an order id), as the replay engine does.
func learnGRPC(t *correlate.Table, x *session.Exchange, resp *session.Response) {
	if resp != nil && x.Stream != nil && x.Stream.GRPC != nil && len(x.Response.Body) > 0 {
		t.LearnGRPC(x, resp)
	}
}

// noiseDue says whether this request of route is sent twice: the first
// NoiseFirst of each route, then a NoiseShare of them.
func (m *Mirror) noiseDue(route string) bool {
	if m.cfg.NoiseShare < 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.noiseN[route]
	if len(m.noiseN) < 10000 || n > 0 {
		m.noiseN[route] = n + 1
	}
	if n < m.cfg.NoiseFirst {
		return true
	}
	every := int(1 / m.cfg.NoiseShare)
	return every > 0 && (n-m.cfg.NoiseFirst)%every == 0
}

// equivalent says whether s is what the table maps p to.
func equivalent(t *correlate.Table) compare.Equivalent {
	return func(p, s string) bool {
		if p == "" || t.Len() == 0 {
			return false
		}
		r := session.Request{Header: session.Headers{{Name: "X-Reprise-Value", Value: p}}}
		out, rw := t.Rewrite(&r)
		return rw.Substituted > 0 && out.Header[0].Value == s
	}
}

func (m *Mirror) count(c map[string]uint64, k string) {
	m.mu.Lock()
	c[k]++
	m.mu.Unlock()
}

// send sends req, x's request as rewritten for t, to t and returns its
// answer, or nil when there was none. An exchange recorded over HTTP/2
// goes as a stream (see do). Only requests to the shadow feed the guard.
func (m *Mirror) send(stopper *guard.Stopper, t *target, x *session.Exchange, req *session.Request, toShadow bool) *session.Response {
	due := time.Now()
	if err := m.throttle.Wait(stopper.Issue()); err != nil {
		m.count(m.shed, "stopped")
		return nil
	}
	if _, err := m.sem.Acquire(stopper.Issue()); err != nil {
		m.count(m.shed, "stopped")
		return nil
	}
	defer m.sem.Release()
	if now := time.Now(); !t.allow(now) {
		m.count(m.shed, "down")
		if toShadow && m.guard != nil { // a shadow that is down is sick
			m.guard.Observe(guard.NewObservation(due, time.Time{}, now, 0, "connect"))
		}
		return nil
	}
	if !http1.IsToken(req.Method) {
		t.result(true, time.Now()) // not the target's fault; end a probe
		m.errs.Add(1)
		return nil
	}
	sent := time.Now()
	m.sent.Add(1)
	out, err := t.do(stopper.InFlight(), x, req)
	var ge *wire.GRPCError
	answered := err == nil || errors.As(err, &ge) // a gRPC status is an answer
	status := 0
	if answered {
		status = out.Status
	}
	done := time.Now()
	t.result(answered, done)
	kind := wire.Kind(err)
	if ge != nil && x.Stream != nil && x.Stream.GRPC != nil && x.Stream.GRPC.HasStatus && x.Stream.GRPC.Status == ge.Code {
		kind = "" // the status the primary answered too: no sign of a sick shadow
	}
	if !answered {
		m.errs.Add(1)
	} else if status >= 500 {
		m.s5xx.Add(1)
	}
	if toShadow {
		m.mu.Lock()
		m.hist.RecordValue(max(1, done.Sub(sent).Microseconds()))
		m.mu.Unlock()
		if m.guard != nil {
			m.guard.Observe(guard.NewObservation(due, sent, done, status, kind))
		}
	}
	return out
}

// do sends req to t through the one sender, as the replay engine does:
// fields as recorded less the hop-by-hop ones, Host (or :authority) from
// the target, the request cut short when ctx ends. An exchange recorded
// over HTTP/2 goes as a stream of t's HTTP/2 connection, gRPC messages at
// their recorded offsets; any other in its HTTP/1 form. A gRPC answer with
// a non-OK grpc-status comes with a *wire.GRPCError beside it.
func (t *target) do(ctx context.Context, x *session.Exchange, req *session.Request) (*session.Response, error) {
	h2 := x.Conn.Protocol.IsHTTP2() || http2.NeedsHTTP2(req) // gRPC needs HTTP/2 whatever the record says
	if !h2 {
		req = http2.AsHTTP1(req) // an HTTP/2 request's pseudo-header fields are no header lines
	}
	u := *t.base
	path, query, _ := strings.Cut(req.Target, "?")
	if strings.Contains(req.Target, "://") { // absolute-form: keep path and query only
		if pu, err := url.Parse(req.Target); err == nil {
			path, query = pu.EscapedPath(), pu.RawQuery
		}
	}
	u.RawPath, u.Path, u.RawQuery = "", "", query
	if pu, err := url.Parse(path); err == nil {
		u.Path, u.RawPath = pu.Path, pu.RawPath
	}
	wr := wire.Request{Method: req.Method, Target: u.RequestURI(), Host: u.Host, Header: req.Header, Body: req.Body}
	if !h2 {
		out, _, err := t.client.Do(ctx, &wr)
		return out, err
	}
	hr := &wire.H2Request{Request: &wr, Trailer: req.Trailer}
	if t.base.Scheme == "https" {
		hr.Scheme = "https"
	}
	if x.Stream != nil && x.Stream.GRPC != nil {
		hr.GRPC = true
		hr.Parts = wire.GRPCParts(x.Stream.GRPC, req.Body, 1)
	} else {
		hr.GRPC = strings.HasPrefix(req.Header.Get("content-type"), "application/grpc")
	}
	out, _, err := t.h2.Do(ctx, hr)
	return out, err
}
