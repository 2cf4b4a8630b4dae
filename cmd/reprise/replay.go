package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// replayOptions are the flags of 'reprise replay'.
type replayOptions struct {
	target         string
	speed          string
	scale          int
	stagger        time.Duration
	maxInFlight    int
	timeout        time.Duration
	connectTimeout time.Duration
	maxDuration    time.Duration
	window         time.Duration
	insecure       bool
	keepHost       bool
	follow         bool
	uncorrelated   string
	rejected       string
	credentials    string
	include        []string
	exclude        []string
	methods        []string
	from, to       time.Duration
	sessions       int
	sessionKeys    string
	report         string
	asJSON         bool
	maxErrorRate   float64
	progress       time.Duration
}

// addReplay registers 'reprise replay' on the root command.
func addReplay(root *cobra.Command) {
	o := &replayOptions{}
	c := &cobra.Command{
		Use:   "replay FILE... --target URL",
		Short: "Replay recordings against a target at 1x-100x, sessions in order, tokens live",
		Long: `Re-issue the requests of one or more recordings against a target.

Timing: every request is due at start + offset/speed on one clock; a late
request goes at once and its lateness is counted as lag, never carried over.
--speed max sends as fast as the sessions' order and the caps allow.

Order: a request is not sent until every request of its session that had
completed before it started, in the recording, has completed in the replay.
Requests that overlapped may overlap; sessions are independent. Sessions come
from the recording (--session-keys), else each connection is one.

Live values: tokens, cookies and ids the recording's server issued are mapped
to what the target issues and substituted in the session's later requests. A
request that carries a value with no live counterpart (its login failed) is
uncorrelated: skipped unless --uncorrelated send. A request the recording's
server refused with 401 goes unchanged, so the target refuses it too
(--rejected). --credentials gives staging logins where the recording's were
redacted.

--scale N replays each session N times as independent clones keyed
"SESSION#k", clone k shifted by k*--clone-stagger on the recording's timeline;
each logs in and gets its own tokens.

Safe by default: the target must be named; at most --max-inflight (64)
requests on the wire; --max-duration (1h) bounds the run; TLS certificates
are checked. Progress goes to stderr, a summary at the end; --report writes
every figure as JSON. Exit 0 when the replay completed, 1 when it failed
(errors above --max-error-rate, a dead target, stopped early).`,
		Example: `  # replay at the recorded pace
  reprise replay traffic.rpz --target http://127.0.0.1:8089

  # ten times faster, three clones of every user, full figures to run.json
  reprise replay traffic.rpz --target http://127.0.0.1:8089 --speed 10 --scale 3 --report run.json

  # only the API, the first 100 sessions, staging logins for redacted ones
  reprise replay 'traffic.*.rpz' --target https://staging.example:8443 \
    --include-path '^/api/' --sessions 100 --credentials staging-users.csv

  # as fast as the order allows, 32 requests in flight
  reprise replay traffic.rpz --target http://127.0.0.1:8089 --speed max --max-inflight 32`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return replayRun(c.Context(), o, args, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.StringVar(&o.target, "target", "", "URL to send to, e.g. http://127.0.0.1:8089 (required)")
	f.StringVar(&o.speed, "speed", "1", "time compression from 0.1 to 100 (e.g. 2 or 2x), or max")
	f.IntVar(&o.scale, "scale", 1, "replay each session this many times as independent clones (1-1000)")
	f.DurationVar(&o.stagger, "clone-stagger", replay.DefaultCloneStagger, "shift between clones on the recording's timeline")
	f.IntVar(&o.maxInFlight, "max-inflight", replay.DefaultMaxInFlight, "most requests on the wire at once")
	f.DurationVar(&o.timeout, "timeout", replay.DefaultTimeout, "per request, from send to the last response byte")
	f.DurationVar(&o.connectTimeout, "connect-timeout", replay.DefaultConnectTimeout, "per new connection (dial and TLS handshake)")
	f.DurationVar(&o.maxDuration, "max-duration", replay.DefaultMaxDuration, "stop issuing requests after this long")
	f.DurationVar(&o.window, "window", replay.DefaultWindow, "look-ahead window (recording time) used to sort requests by start")
	f.BoolVar(&o.insecure, "insecure", false, "skip TLS certificate checks")
	f.BoolVar(&o.keepHost, "keep-host", false, "send the recorded Host header instead of the target's")
	f.BoolVar(&o.follow, "follow-redirects", false, "follow redirects (by default they are the response, as recorded)")
	f.StringVar(&o.uncorrelated, "uncorrelated", replay.UncorrelatedSkip, "requests carrying a value with no live counterpart: skip or send")
	f.StringVar(&o.rejected, "rejected", replay.RejectedAsRecorded, "requests the recording's server refused with 401: recorded (send unchanged), live, or skip")
	f.StringVar(&o.credentials, "credentials", "", "CSV file of user,password for login requests")
	f.StringArrayVar(&o.include, "include-path", nil, "replay only request-targets matching this regular expression (repeatable)")
	f.StringArrayVar(&o.exclude, "exclude-path", nil, "leave out request-targets matching this regular expression (repeatable)")
	f.StringSliceVar(&o.methods, "method", nil, "replay only these methods, e.g. GET,POST")
	f.DurationVar(&o.from, "from", 0, "start at this offset into the recording")
	f.DurationVar(&o.to, "to", 0, "stop at this offset into the recording (0: the end)")
	f.IntVar(&o.sessions, "sessions", 0, "replay only the first N sessions, whole (0: all)")
	f.StringVar(&o.sessionKeys, "session-keys", "auto", "auto (recorded if the recording has them, else recompute), recorded, recompute, or connection")
	f.StringVar(&o.report, "report", "", "write every figure as JSON to this file")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON on stdout instead of the summary")
	f.Float64Var(&o.maxErrorRate, "max-error-rate", replay.DefaultMaxErrorRate, "share of requests that may fail for the replay to count as completed")
	f.DurationVar(&o.progress, "progress", 2*time.Second, "progress line interval on stderr (0: none)")
	root.AddCommand(c)
}

func replayRun(ctx context.Context, o *replayOptions, paths []string, stdout, stderr io.Writer) error {
	opts, err := o.libOptions(stderr)
	if err != nil {
		return usagef(err)
	}
	if o.target == "" {
		return usagef(errors.New("no target: give --target http://HOST:PORT (a replay never picks one itself)"))
	}
	rd, err := session.Open(paths...)
	if err != nil {
		return err
	}
	defer rd.Close()
	var src session.Source = rd
	switch keys := o.sessionKeys; {
	case keys == "recompute" || (keys == "auto" && !hasSessionRules(rd.Metadata())):
		tr, err := identity.NewTracker()
		if err != nil {
			return err
		}
		src = tr.Annotate(clearSessions{rd})
	case keys == "connection":
		src = clearSessions{rd}
	}
	if md := rd.Metadata(); len(md) > 0 && md[0].Start != 0 {
		opts = append(opts, replay.WithOrigin(md[0].Start))
	}
	opts = append(opts, replay.WithLabels(map[string]string{"recording": strings.Join(rd.Paths(), ","), "tool": Version()}))
	r, err := replay.New(o.target, opts...)
	if err != nil {
		return usagef(err)
	}
	fmt.Fprintf(stderr, "replay: %s -> %s at speed %s, scale %d, at most %d in flight\n",
		strings.Join(rd.Paths(), ", "), o.target, o.speed, o.scale, o.maxInFlight)
	rep, runErr := r.Run(ctx, src)
	if rep == nil {
		return runErr
	}
	if o.report != "" {
		if err := writeReport(o.report, rep); err != nil {
			return err
		}
	}
	if o.asJSON {
		if err := rep.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		rep.WriteSummary(stderr)
	}
	if runErr != nil {
		return runErr
	}
	if !rep.Completed {
		return fmt.Errorf("replay did not complete: %s", rep.Failure)
	}
	return nil
}

// libOptions turns the flags into the library's options.
func (o *replayOptions) libOptions(stderr io.Writer) ([]replay.Option, error) {
	pacer, err := replay.ParseSpeed(o.speed)
	if err != nil {
		return nil, fmt.Errorf("--speed: %w", err)
	}
	switch o.sessionKeys {
	case "auto", "recorded", "recompute", "connection":
	default:
		return nil, fmt.Errorf("--session-keys %q: use auto, recorded, recompute or connection", o.sessionKeys)
	}
	opts := []replay.Option{
		replay.WithPacer(pacer),
		replay.WithScale(o.scale),
		replay.WithCloneStagger(o.stagger),
		replay.WithMaxInFlight(o.maxInFlight),
		replay.WithTimeout(o.timeout),
		replay.WithConnectTimeout(o.connectTimeout),
		replay.WithMaxDuration(o.maxDuration),
		replay.WithWindow(o.window),
		replay.WithInsecure(o.insecure),
		replay.WithKeepHost(o.keepHost),
		replay.WithFollowRedirects(o.follow),
		replay.WithUncorrelated(o.uncorrelated),
		replay.WithRejected(o.rejected),
		replay.WithRange(o.from, o.to),
		replay.WithSessions(o.sessions),
		replay.WithMaxErrorRate(o.maxErrorRate),
	}
	if len(o.include) > 0 {
		opts = append(opts, replay.WithIncludePath(o.include...))
	}
	if len(o.exclude) > 0 {
		opts = append(opts, replay.WithExcludePath(o.exclude...))
	}
	if len(o.methods) > 0 {
		opts = append(opts, replay.WithMethods(o.methods...))
	}
	if o.credentials != "" {
		f, err := os.Open(o.credentials)
		if err != nil {
			return nil, fmt.Errorf("--credentials: %w", err)
		}
		creds, err := correlate.ParseCredentials(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--credentials %s: %w", o.credentials, err)
		}
		opts = append(opts, replay.WithCredentials(creds))
	}
	if o.progress > 0 {
		opts = append(opts, replay.WithProgress(stderr, o.progress))
	}
	// Check every option now, so a mistake is a usage error before
	// anything is opened or sent.
	if _, err := replay.New("http://127.0.0.1", opts...); err != nil {
		return nil, err
	}
	return opts, nil
}

func writeReport(path string, rep *replay.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("--report %s: %w", path, err)
	}
	return f.Close()
}

func hasSessionRules(md []session.Metadata) bool {
	for _, m := range md {
		if len(m.SessionRules) > 0 {
			return true
		}
	}
	return false
}

// clearSessions drops recorded session keys and token events, so that the
// tracker recomputes them or the connection stands in.
type clearSessions struct{ src session.Source }

func (c clearSessions) Next() (*session.Exchange, error) {
	x, err := c.src.Next()
	if x != nil {
		x.Session, x.Tokens = "", nil
	}
	return x, err
}
