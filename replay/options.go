package replay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay/compare"
	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/ramp"
)

// Defaults. They are chosen so that a replay started without options can
// never flood a target: one recorded speed, at most DefaultMaxInFlight
// requests on the wire, bounded in time.
const (
	DefaultMaxInFlight    = 64
	DefaultMaxPending     = 10000
	DefaultTimeout        = 30 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultMaxDuration    = time.Hour
	DefaultWindow         = 5 * time.Second
	DefaultCloneStagger   = 50 * time.Millisecond
	DefaultSessionIdle    = 10 * time.Minute
	DefaultMaxErrorRate   = 0.01
	DefaultMaxScale       = 1000
)

// Rejected policies: what to do with a request the recording's server
// refused with 401 (an expired or revoked token, a wrong password). Its
// client then usually refreshed or logged in again and retried, and that
// retry is in the recording too.
const (
	// RejectedAsRecorded sends it with the values it was recorded with,
	// unsubstituted, so the target refuses it as the recorded server did
	// and the retry that follows does what it did (the default).
	RejectedAsRecorded = "recorded"
	// RejectedLive substitutes live values as for any other request: the
	// target will usually accept it, and the recorded retry then repeats
	// its effect (a second checkout, a second delete).
	RejectedLive = "live"
	// RejectedSkip does not send it.
	RejectedSkip = "skip"
)

// Uncorrelated policies: what to do with a request that carries a
// server-issued value with no live counterpart.
const (
	UncorrelatedSkip = "skip" // count it and do not send it (the default)
	UncorrelatedSend = "send" // count it and send it with the recorded value
)

// Limiter delays a request until a shared budget allows it; a
// *rate.Limiter from golang.org/x/time/rate is one. One limiter serves the
// whole replay, so a cap never multiplies with workers. Time spent waiting
// shows as lag.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Option configures a Replayer; it is checked when New is called.
type Option func(*options) error

type options struct {
	pacer          Pacer
	speedRamp      *ramp.Ramp // pacer, when it is a ramp of speeds
	scale          int
	stagger        time.Duration
	maxInFlight    int
	maxPending     int
	pendingSet     bool
	timeout        time.Duration
	connectTimeout time.Duration
	maxDuration    time.Duration
	window         time.Duration
	idle           time.Duration
	insecure       bool
	tls            *tls.Config
	keepHost       bool
	followRedirect bool
	uncorrelated   string
	rejected       string
	credentials    []correlate.Credential
	include        []*regexp.Regexp
	exclude        []*regexp.Regexp
	methods        map[string]bool
	from, to       time.Duration
	sessions       int
	origin         int64
	limiter        Limiter
	observers      []Observer
	progress       io.Writer
	progressEvery  time.Duration
	maxErrorRate   float64
	labels         map[string]string

	scaleRamp     *ramp.Ramp
	maxSessions   int
	guard         *guard.Guard
	drain         time.Duration
	drainSet      bool
	monitors      []Monitor
	planned       time.Duration
	stages        []ramp.StagePlan
	ratePerSecond float64
	compare       *compare.Comparer
	connections   string          // see WithConnections; "" is recorded
	recConns      connTable       // see WithRecordedConns
	sessLengths   *SessionLengths // see WithSessionLengths
	// sessionsHeld, when set, is told the most sessions the dispatcher
	// held at once and how many it still held when the run ended (for
	// the tests).
	sessionsHeld func(peak, atEnd int)
	protocol     string // see WithProtocol; "" is auto

	// Issue 18: scale-out (shard.go).
	shard     Shard
	startAt   time.Time
	recording *RecordingID

	planOptions // see plan.go
}

func defaults() options {
	return options{
		pacer:          Speed(1),
		scale:          1,
		stagger:        DefaultCloneStagger,
		maxInFlight:    DefaultMaxInFlight,
		maxPending:     DefaultMaxPending,
		timeout:        DefaultTimeout,
		connectTimeout: DefaultConnectTimeout,
		maxDuration:    DefaultMaxDuration,
		window:         DefaultWindow,
		idle:           DefaultSessionIdle,
		uncorrelated:   UncorrelatedSkip,
		rejected:       RejectedAsRecorded,
		maxErrorRate:   DefaultMaxErrorRate,
		planOptions:    defaultPlanOptions(),
	}
}

// WithPacer sets how due times are computed (default Speed(1)).
func WithPacer(p Pacer) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("pacer is nil")
		}
		if s, ok := p.(Speed); ok && (float64(s) < MinSpeed || float64(s) > MaxSpeed) {
			return fmt.Errorf("speed %g out of range: want %g to %g, or max", float64(s), MinSpeed, MaxSpeed)
		}
		o.pacer = p
		// A ramp of speeds names its stages for the live view and the
		// report; any other Pacer has one speed.
		o.speedRamp, _ = p.(*ramp.Ramp)
		return nil
	}
}

// WithScale replays every session n times as independent clones. Clone k
// (0 <= k < n) of session S is keyed "S#k" (clone 0 of an unscaled replay
// keeps the key S), has its own correlation table (it logs in and is
// issued its own tokens), and is shifted later on the recording's timeline
// by k*stagger (WithCloneStagger). The recording's shape (its rate over
// time, each session's think times) is kept; the run grows by
// (n-1)*stagger/speed at most.
func WithScale(n int) Option {
	return func(o *options) error {
		if n < 1 || n > DefaultMaxScale {
			return fmt.Errorf("scale %d out of range: want 1 to %d", n, DefaultMaxScale)
		}
		o.scale = n
		return nil
	}
}

// WithCloneStagger sets the shift between clones in recording time
// (default 50ms). Zero starts all clones together.
func WithCloneStagger(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("clone stagger must not be negative")
		}
		o.stagger = d
		return nil
	}
}

// WithMaxInFlight caps the requests on the wire at once (default 64); the
// connection pool is sized to it.
func WithMaxInFlight(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("max in-flight %d: want 1 or more", n)
		}
		o.maxInFlight = n
		return nil
	}
}

// WithMaxPending caps the requests that are due but wait for their
// session's order or an in-flight slot (default 10000, and 4 times the
// in-flight cap with Max, which needs no more than that to keep every
// slot busy). When it is reached, scheduling pauses and the delay shows
// as lag.
func WithMaxPending(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("max pending %d: want 1 or more", n)
		}
		o.maxPending, o.pendingSet = n, true
		return nil
	}
}

// WithTimeout bounds each request, from send to the last byte of the
// response (default 30s).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("timeout must be positive")
		}
		o.timeout = d
		return nil
	}
}

// WithConnectTimeout bounds each new connection's dial and TLS handshake
// (default 5s).
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("connect timeout must be positive")
		}
		o.connectTimeout = d
		return nil
	}
}

// WithMaxDuration stops the replay in order (no new requests; in-flight
// ones finish within their timeout) after d (default 1h).
func WithMaxDuration(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("max duration must be positive")
		}
		o.maxDuration = d
		return nil
	}
}

// WithWindow sets the look-ahead window in recording time (default 5s).
// Exchanges are read this far ahead of the one being scheduled and sorted
// by start time, so a recording written in completion order replays in
// start order. Memory holds the exchanges of one window.
func WithWindow(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("window must not be negative")
		}
		o.window = d
		return nil
	}
}

// WithSessionIdle sets how long (in recording time) a session may go
// without a request before its state is released (default 10m). A session
// that comes back later starts with an empty correlation table.
func WithSessionIdle(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("session idle must be positive")
		}
		o.idle = d
		return nil
	}
}

// WithSessionLengths gives the number of requests each session of the
// recording has (Survey.Sessions, from SurveyRecording with
// CountSessionLengths), so that a session is released, its outcome counted and
// its state dropped, as soon as its last request has completed, instead
// of after the idle limit (WithSessionIdle): a replay of many short
// sessions then holds those in progress alone. A session whose count is
// unknown, or which the run does not send every request of (a range, a
// shard, a filter), is held for the idle limit as without counts. The
// counts must be those of the recording the run reads, under the session
// keys it reads them with: a count too high only holds a session longer,
// but one too low would release a session that still has requests to
// send, and the values it learned with it. nil gives none.
func WithSessionLengths(c *SessionLengths) Option {
	return func(o *options) error {
		o.sessLengths = c
		return nil
	}
}

// WithInsecure skips TLS certificate checks. Off by default.
func WithInsecure(v bool) Option {
	return func(o *options) error { o.insecure = v; return nil }
}

// WithTLSConfig sets the TLS configuration toward an https target: RootCAs
// to trust a private CA besides the system roots (--ca), ServerName to send
// another SNI than the target's host (--sni). Certificates are checked
// unless WithInsecure; the ALPN protocol is set by the replay (http/1.1).
func WithTLSConfig(c *tls.Config) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("tls config is nil")
		}
		o.tls = c.Clone()
		return nil
	}
}

// WithKeepHost sends the recorded Host header instead of the target's.
func WithKeepHost(v bool) Option {
	return func(o *options) error { o.keepHost = v; return nil }
}

// WithFollowRedirects follows redirects (up to 10). By default a redirect
// is recorded as the response, as the recorded client saw it.
func WithFollowRedirects(v bool) Option {
	return func(o *options) error { o.followRedirect = v; return nil }
}

// WithUncorrelated sets the policy for uncorrelated requests: "skip"
// (default) or "send".
func WithUncorrelated(policy string) Option {
	return func(o *options) error {
		switch policy {
		case UncorrelatedSkip, UncorrelatedSend:
			o.uncorrelated = policy
			return nil
		}
		return fmt.Errorf("uncorrelated policy %q: want skip or send", policy)
	}
}

// WithRejected sets the policy for requests the recording's server
// refused with 401: "recorded" (default), "live" or "skip".
func WithRejected(policy string) Option {
	return func(o *options) error {
		switch policy {
		case RejectedAsRecorded, RejectedLive, RejectedSkip:
			o.rejected = policy
			return nil
		}
		return fmt.Errorf("rejected policy %q: want recorded, live or skip", policy)
	}
}

// WithCredentials gives staging logins. Every login request (a request
// whose form or JSON body has a password field) gets the user and password
// of one credential: session number i (in order of first appearance) and
// clone k use credential (i*scale+k) mod len(creds).
func WithCredentials(creds []correlate.Credential) Option {
	return func(o *options) error {
		if len(creds) == 0 {
			return correlate.ErrNoCredentials
		}
		o.credentials = creds
		return nil
	}
}

// WithIncludePath replays only requests whose target matches one of the
// regular expressions (the target includes the query).
func WithIncludePath(exprs ...string) Option {
	return func(o *options) error {
		for _, e := range exprs {
			re, err := regexp.Compile(e)
			if err != nil {
				return fmt.Errorf("include path %q: %w", e, err)
			}
			o.include = append(o.include, re)
		}
		return nil
	}
}

// WithExcludePath drops requests whose target matches one of the regular
// expressions.
func WithExcludePath(exprs ...string) Option {
	return func(o *options) error {
		for _, e := range exprs {
			re, err := regexp.Compile(e)
			if err != nil {
				return fmt.Errorf("exclude path %q: %w", e, err)
			}
			o.exclude = append(o.exclude, re)
		}
		return nil
	}
}

// WithMethods replays only requests with one of the methods.
func WithMethods(methods ...string) Option {
	return func(o *options) error {
		if o.methods == nil {
			o.methods = make(map[string]bool)
		}
		for _, m := range methods {
			for _, p := range strings.Split(m, ",") {
				if p = strings.TrimSpace(p); p != "" {
					o.methods[strings.ToUpper(p)] = true
				}
			}
		}
		return nil
	}
}

// WithRange replays only requests that started between from and to
// (offsets from the recording's origin, see WithOrigin; to 0 means the
// end). As always, the replay starts with the first request kept.
func WithRange(from, to time.Duration) Option {
	return func(o *options) error {
		if from < 0 || to < 0 || (to != 0 && to <= from) {
			return fmt.Errorf("range %v-%v: want 0 <= from < to", from, to)
		}
		o.from, o.to = from, to
		return nil
	}
}

// WithSessions replays only the first n sessions, in order of their first
// request (after the other filters). The sample is deterministic and
// streams: it needs no pass over the whole recording.
func WithSessions(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("sessions %d: want 0 (all) or more", n)
		}
		o.sessions = n
		return nil
	}
}

// WithOrigin sets the recording's start (Unix ns), from which WithRange
// measures offsets (e.g. Metadata.Start). By default the earliest request
// start in the first look-ahead window is the origin. The schedule itself
// always starts with the first request kept: an idle lead-in is not
// waited out.
func WithOrigin(unixNano int64) Option {
	return func(o *options) error { o.origin = unixNano; return nil }
}

// WithLimiter makes every request wait on l before it is sent.
func WithLimiter(l Limiter) Option {
	return func(o *options) error { o.limiter = l; return nil }
}

// WithObserver adds an observer of results.
func WithObserver(obs Observer) Option {
	return func(o *options) error {
		if obs == nil {
			return errors.New("observer is nil")
		}
		o.observers = append(o.observers, obs)
		return nil
	}
}

// WithProgress writes a one-line progress report to w every interval.
func WithProgress(w io.Writer, every time.Duration) Option {
	return func(o *options) error {
		if every <= 0 {
			return errors.New("progress interval must be positive")
		}
		o.progress, o.progressEvery = w, every
		return nil
	}
}

// WithMaxErrorRate sets the share of requests that may fail (transport
// errors) for the replay to count as completed (default 0.01).
func WithMaxErrorRate(f float64) Option {
	return func(o *options) error {
		if f < 0 || f > 1 {
			return fmt.Errorf("max error rate %g: want 0 to 1", f)
		}
		o.maxErrorRate = f
		return nil
	}
}

// WithLabels adds free-form labels to the report (the recording's file
// names, the tool's version).
func WithLabels(kv map[string]string) Option {
	return func(o *options) error {
		if o.labels == nil {
			o.labels = make(map[string]string)
		}
		for k, v := range kv {
			o.labels[k] = v
		}
		return nil
	}
}

// WithStartAt makes Run wait, once it is ready to send, until t before
// its clock starts, so that shards on many machines keep one schedule. A
// run that reaches t late starts at once; its report says how late
// (StartLateMS). The zero time starts at once.
func WithStartAt(t time.Time) Option {
	return func(o *options) error { o.startAt = t; return nil }
}
