package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/check"
	"github.com/reprise-tool/reprise/replay/compare"
	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/htmlreport"
	"github.com/reprise-tool/reprise/replay/live"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// replayOptions are the flags of 'reprise replay'.
type replayOptions struct {
	cpuProfile     string // hidden, for developers: a pprof CPU profile of the whole run
	memProfile     string // hidden, for developers: a pprof heap profile at the largest live heap
	target         string
	speed          string
	scale          int
	stagger        time.Duration
	maxInFlight    int
	connections    string
	protocol       string
	timeout        time.Duration
	connectTimeout time.Duration
	maxDuration    time.Duration
	window         time.Duration
	insecure       bool
	ca, sni        string // TLS toward an https target (replayTLS)
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

	ramps       ramp.Flag
	rampMode    ramp.Mode
	rate        ramp.Rate
	maxSessions int
	abortOn     guard.Flag
	abortWindow time.Duration
	drain       time.Duration
	onAbort     string
	allowOrigin bool
	dryRun      bool
	metricsAddr string
	html        string
	compare     bool
	compareSkip []string

	shard   string // --shard K/N; see shardOptions
	startAt string // --start-at
}

// replayLong is the help of 'reprise replay'.
const replayLong = `Re-issue the requests of one or more recordings against a target.

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

Control: --ramp changes the speed (1x:2m,2x:2m,5x:5m,10x) or the scale
(scale=1:2m,scale=3) in stages over wall time, stepped or linear
(--ramp-mode, or "~" after a stage). --rate N/s is one hard cap for the whole
run (one limiter, never per worker); --max-inflight and --max-sessions cap
requests and sessions at once. A cap that delays the schedule shows as lag in
the progress line and the report, never as hidden slowness.

Guards (on by default): --abort-on rules are evaluated live over the last
--abort-window (10s). The defaults are error_rate>20% and p99>5s, each over
at least 20 requests in the window; lag is not a default guard, because caps
make lag on purpose. --abort-on none turns them off. When a guard trips, no new
request is sent, those in flight may finish for --drain-timeout (10s), the
report (and --html) is written, then --on-abort CMD runs once through the
shell with REPRISE_ABORT_REASON, REPRISE_ABORT_RULE, REPRISE_ABORT_VALUE,
REPRISE_ABORT_THRESHOLD, REPRISE_ABORT_AT and REPRISE_REPORT in its
environment, and reprise exits 3. SIGINT (or SIGTERM) stops the same way
(without --on-abort) and exits 130; a second SIGINT abandons the requests in
flight at once.

Safe by default: the target must be named; a target that is the recording's
own server (a recorded Host name, or a recorded server address, resolved) is
refused unless --allow-original-host (this reads the recording once before
sending); --dry-run prints the plan (duration, sessions, peak requests per
second, peak concurrency, refresh events, stages) and sends nothing; at most
--max-inflight (64) requests on the wire; --max-duration (1h) bounds the run;
each recorded connection is replayed as a connection of its own, opened,
pipelined and closed as recorded (--connections pooled shares a pool, for
top speed);
TLS certificates are checked.

Seeing it: progress on stderr (a bar on a terminal, a line every --progress
otherwise) with elapsed/total, stage, requests per second, p50/p99, errors
and lag; --metrics-addr serves Prometheus metrics; --report writes every
figure as JSON (reprise report run.json --html out.html redraws the page
from it); --html writes one self-contained page.

Scale-out: --shard K/N (K from 0; or JOB_COMPLETION_INDEX with REPRISE_SHARDS)
sends only the session clones whose key hashes to shard K, so N processes
together send every session once, each at its single-run due time; --rate and
--max-sessions are the whole run's and divided among the shards. --start-at
(RFC 3339, or +30s) prepares, then starts the clock at that instant; a late
start is reported. 'reprise report merge' joins the shards' reports;
'reprise k8s job' writes the Kubernetes Job.

Exit codes: 0 completed; 1 failed (errors above --max-error-rate, a dead
target, stopped early); 2 a command-line mistake or a refused target; 3 a
guard stopped the replay; 130 interrupted.`

// addReplay registers 'reprise replay' on the root command.
func addReplay(root *cobra.Command) {
	o := &replayOptions{}
	c := &cobra.Command{
		Use:   "replay FILE... --target URL",
		Short: "Replay recordings against a target at 1x-100x, sessions in order, tokens live",
		Long:  replayLong,
		Example: `  # replay at the recorded pace
  reprise replay traffic.rpz --target http://127.0.0.1:8089

  # ten times faster, three clones of every user, full figures to run.json
  reprise replay traffic.rpz --target http://127.0.0.1:8089 --speed 10 --scale 3 --report run.json

  # only the API, the first 100 sessions, staging logins for redacted ones
  reprise replay 'traffic.*.rpz' --target https://staging.example:8443 \
    --include-path '^/api/' --sessions 100 --credentials staging-users.csv

  # as fast as the order allows, 32 requests in flight
  reprise replay traffic.rpz --target http://127.0.0.1:8089 --speed max --max-inflight 32

  # ramp up under a hard cap, stop on errors or slowness, roll back by script
  reprise replay traffic.rpz --target http://127.0.0.1:8089 --ramp 1x:2m,2x:2m,5x:5m,10x \
    --rate 500/s --abort-on 'error_rate>5%,p99>2s,lag>5s' --on-abort ./scale-down.sh \
    --report run.json --html run.html

  # what would it do? nothing is sent
  reprise replay traffic.rpz --target http://127.0.0.1:8089 --speed 10 --scale 3 --dry-run`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if o.cpuProfile != "" {
				stop, err := startCPUProfile(o.cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			if o.memProfile != "" {
				defer startHeapProfile(o.memProfile, c.ErrOrStderr())()
			}
			// A replay's heap is small but churns: a soft limit keeps its
			// resident set near 55 MiB instead of 75 (GOMEMLIMIT overrides).
			defer replay.SoftMemoryLimit(replay.DefaultMemoryLimit)()
			return replayRun(c.Context(), o, args, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "for developers: write a pprof CPU profile of the run to this file")
	_ = f.MarkHidden("cpuprofile")
	f.StringVar(&o.memProfile, "memprofile", "", "for developers: write a pprof heap profile to this file when the run ends")
	_ = f.MarkHidden("memprofile")
	f.StringVar(&o.target, "target", "", "URL to send to, e.g. http://127.0.0.1:8089 (required)")
	f.StringVar(&o.speed, "speed", "1", "time compression from 0.1 to 100 (e.g. 2 or 2x), or max")
	f.IntVar(&o.scale, "scale", 1, "replay each session this many times as independent clones (1-1000)")
	f.DurationVar(&o.stagger, "clone-stagger", replay.DefaultCloneStagger, "shift between clones on the recording's timeline")
	f.IntVar(&o.maxInFlight, "max-inflight", replay.DefaultMaxInFlight, "most requests on the wire at once")
	f.StringVar(&o.protocol, "protocol", replay.ProtocolAuto, "auto: each connection in its recorded protocol; h1: everything as HTTP/1.1 (gRPC skipped); h2: HTTP/2 over TLS (https targets); h2c: cleartext HTTP/2")
	f.StringVar(&o.connections, "connections", replay.ConnectionsRecorded, "recorded: each recorded connection replayed as its own; pooled: a shared pool, for top speed")
	f.DurationVar(&o.timeout, "timeout", replay.DefaultTimeout, "per request, from send to the last response byte")
	f.DurationVar(&o.connectTimeout, "connect-timeout", replay.DefaultConnectTimeout, "per new connection (dial and TLS handshake)")
	f.DurationVar(&o.maxDuration, "max-duration", replay.DefaultMaxDuration, "stop issuing requests after this long")
	f.DurationVar(&o.window, "window", replay.DefaultWindow, "look-ahead window (recording time) used to sort requests by start")
	f.BoolVar(&o.insecure, "insecure", false, "skip TLS certificate checks")
	f.StringVar(&o.ca, "ca", "", "trust an https target's certificate by this CA file (PEM) as well as the system roots")
	f.StringVar(&o.sni, "sni", "", "TLS server name to send and check the certificate for (default: the target's host)")
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
	addSessionKeysFlag(f, &o.sessionKeys)
	f.StringVar(&o.report, "report", "", "write every figure as JSON to this file (- for stdout, between marker lines, as a pod's log)")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON on stdout instead of the summary")
	f.Float64Var(&o.maxErrorRate, "max-error-rate", replay.DefaultMaxErrorRate, "share of requests that may fail for the replay to count as completed")
	f.DurationVar(&o.progress, "progress", 5*time.Second, "plain progress line interval on stderr when it is not a terminal (0: no progress)")
	o.rampMode = ramp.ModeStep
	f.Var(&o.ramps, "ramp", ramp.Usage)
	f.Var(&o.rampMode, "ramp-mode", ramp.ModeUsage)
	f.Var(&o.rate, "rate", ramp.RateUsage)
	f.IntVar(&o.maxSessions, "max-sessions", 0, "most sessions with work in progress at once (0: no cap)")
	f.Var(&o.abortOn, "abort-on", guard.Usage)
	f.DurationVar(&o.abortWindow, "abort-window", guard.DefaultWindow, "sliding window over which --abort-on rules are evaluated")
	f.DurationVar(&o.drain, "drain-timeout", guard.DefaultDrain, "after a stop, how long requests in flight may finish before they are abandoned")
	f.StringVar(&o.onAbort, "on-abort", "", "shell command run once when a guard stops the replay (the reason is in its environment)")
	f.BoolVar(&o.allowOrigin, "allow-original-host", false, "allow a target that is the recording's own server")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and send nothing")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at this address's /metrics, e.g. :9090 (127.0.0.1 unless a host is named)")
	f.StringVar(&o.html, "html", "", "write a self-contained HTML report to this file")
	f.BoolVar(&o.compare, "compare", false, "compare every response with the recorded one (status, headers, JSON fields; noise and live values discounted) and report the differences")
	f.StringSliceVar(&o.compareSkip, "compare-ignore", nil, `with --compare, leave out JSON paths or headers, e.g. '$.items[*].updated_at,Date'`)
	f.StringVar(&o.shard, "shard", "", "send only part K (from 0) of N of the sessions, e.g. 0/4; default from JOB_COMPLETION_INDEX and "+envShards+" when both are set")
	f.StringVar(&o.startAt, "start-at", "", "prepare, then start the clock at this instant: RFC 3339 (2026-01-02T15:04:05Z) or +30s from now")
	root.AddCommand(c)
}

func replayRun(ctx context.Context, o *replayOptions, paths []string, stdout, stderr io.Writer) error {
	opts, err := o.libOptions()
	if err != nil {
		return usagef(err)
	}
	if o.target == "" {
		return usagef(errors.New("no target: give --target http://HOST:PORT (a replay never picks one itself)"))
	}
	if o.dryRun {
		return o.printPlan(ctx, paths, stdout)
	}
	// One pass before anything is sent: the original-host refusal and
	// the span, for the planned length and the stages.
	survey, err := surveyRecording(ctx, paths, replay.CountSessionLengths(session.SessionKeys(o.sessionKeys)))
	if err != nil {
		return err
	}
	if !o.allowOrigin {
		if err := guard.CheckTarget(ctx, o.target, &survey.Origin, nil); err != nil {
			return usagef(err)
		}
	}
	rd, err := openInput(ctx, paths, stderr) // .gor and HAR imported on the fly
	if err != nil {
		return err
	}
	defer rd.Close()
	// Sessions recomputed are reordered by request start in a buffer no
	// larger than the replay's own look-ahead window: the tracker's
	// default, 16384 exchanges, held 17 MB of a dense recording, more
	// than the rest of the replay. A token's issuer is always read before
	// the requests that carry it (they start after its response ended),
	// so the bound only lets a slow exchange's place in the order slip.
	src, err := identity.WithSessionKeys(session.SessionKeys(o.sessionKeys), rd.Metadata(), rd,
		identity.WithMaxPending(replay.DefaultWindowExchanges))
	if err != nil {
		return err
	}
	if md := rd.Metadata(); len(md) > 0 && md[0].Start != 0 {
		opts = append(opts, replay.WithOrigin(md[0].Start))
	}
	opts = append(opts, replay.WithPlan(survey.Plan), replay.WithRecordedConns(survey.Conns), replay.WithSessionLengths(survey.Sessions))
	opts = append(opts, replay.WithLabels(map[string]string{"recording": strings.Join(rd.Paths(), ","), "tool": Version()}))
	id, err := replay.IdentifyRecording(rd.Paths()...)
	if err != nil {
		return err
	}
	opts = append(opts, replay.WithRecording(id))

	display, stopMetrics, err := o.display(ctx, survey, stderr)
	if err != nil {
		return err
	}
	defer stopMetrics()
	opts = append(opts, display...)
	r, err := replay.New(o.target, opts...)
	if err != nil {
		return usagef(err)
	}
	if err := r.CheckTLS(ctx); err != nil {
		return err // an untrusted https target: --ca, --sni or --insecure
	}
	rules := o.abortOn.Rules()
	fmt.Fprintf(stderr, "replay: %s -> %s at speed %s, scale %d, at most %d in flight; guards %s over %v\n",
		strings.Join(rd.Paths(), ", "), o.target, o.speedText(), o.scale, o.maxInFlight, rules, o.abortWindow)
	if o.shard != "" || o.startAt != "" || os.Getenv(envShards) != "" {
		fmt.Fprintf(stderr, "replay: scale-out: %s\n", o.scaleOutText())
	}
	rep, runErr := runInterruptible(ctx, r, src)
	if rep == nil {
		return runErr
	}
	if o.report != "" {
		if err := writeReportOut(o.report, rep, stdout); err != nil {
			return err
		}
	}
	if o.html != "" {
		if err := writeHTML(o.html, rep); err != nil {
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
	var abort *guard.AbortError
	if errors.As(runErr, &abort) {
		fmt.Fprintf(stderr, "replay: STOPPED BY GUARD %s after %.1fs: %s\n", abort.Trip.RuleText, rep.Abort.AtS, abort.Trip.Reason())
		if o.onAbort != "" {
			hook := &guard.Hook{Command: o.onAbort, Stdout: stderr, Stderr: stderr}
			fmt.Fprintf(stderr, "replay: running --on-abort %q\n", o.onAbort)
			if err := hook.Run(context.WithoutCancel(ctx), abort.Trip, o.report); err != nil {
				fmt.Fprintf(stderr, "replay: --on-abort failed: %v\n", err)
			}
		}
		return runErr
	}
	if runErr != nil {
		return runErr
	}
	if !rep.Completed {
		return fmt.Errorf("replay did not complete: %s", rep.Failure)
	}
	return nil
}

// display makes the progress display and the metrics server the flags
// ask for, as options that subscribe them to the run; stop ends the
// metrics server.
func (o *replayOptions) display(ctx context.Context, survey *replay.Survey, stderr io.Writer) (opts []replay.Option, stop func(), err error) {
	stop = func() {}
	d := &live.Display{}
	if o.progress > 0 {
		var total time.Duration
		if p := o.pacer(); p != nil {
			if _, max := p.(replay.Max); !max {
				total = p.Due(survey.Span())
			}
		}
		if d.Progress, err = live.NewProgress(stderr, live.WithPlainInterval(max(o.progress, time.Second))); err != nil {
			return nil, stop, usagef(err)
		}
		opts = append(opts, replay.WithMonitor(d), replay.WithPlannedLength(total))
	}
	if o.metricsAddr != "" {
		if d.Metrics, err = live.NewMetrics(); err != nil {
			return nil, stop, err
		}
		mctx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
		srv, err := live.Serve(mctx, o.metricsAddr, d.Metrics.Handler())
		if err != nil {
			stopMetrics()
			return nil, stop, usagef(fmt.Errorf("--metrics-addr %s: %w", o.metricsAddr, err))
		}
		fmt.Fprintf(stderr, "replay: metrics on http://%s/metrics\n", srv.Addr)
		if d.Progress == nil {
			opts = append(opts, replay.WithMonitor(d))
		}
		opts = append(opts, replay.WithObserver(d))
		stop = stopMetrics
	}
	return opts, stop, nil
}

// runInterruptible runs the replay with the CLI's signals: the first
// SIGINT or SIGTERM (or ctx ending, the root context's own signal
// handling) stops it in order through Interrupt, with the drain; the
// second abandons the requests in flight by cancelling the run's context.
// The library registers no signal itself.
func runInterruptible(ctx context.Context, r *replay.Replayer, src session.Source) (*replay.Report, error) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	runCtx, abort := context.WithCancelCause(context.WithoutCancel(ctx))
	defer abort(nil)
	done := make(chan struct{})
	defer close(done)
	go func() {
		interrupted := ctx.Done()
		for n := 0; ; {
			select {
			case <-interrupted:
				interrupted = nil
				r.Interrupt(context.Cause(ctx))
			case <-sigs:
				if n++; n == 1 {
					r.Interrupt(guard.ErrInterrupted)
					continue
				}
				abort(guard.ErrInterruptedTwice)
				return
			case <-done:
				return
			}
		}
	}()
	return r.Run(runCtx, src)
}

func surveyRecording(ctx context.Context, paths []string, opts ...replay.SurveyOption) (*replay.Survey, error) {
	rd, err := openInput(ctx, paths, nil)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return replay.SurveyRecording(ctx, rd, opts...)
}

// pacer is the speed in force: the speed ramp, else --speed.
func (o *replayOptions) pacer() replay.Pacer {
	if o.ramps.Speed != nil {
		return o.ramps.Speed.WithMode(o.rampMode)
	}
	p, err := replay.ParseSpeed(o.speed)
	if err != nil {
		return nil
	}
	return p
}

func (o *replayOptions) speedText() string {
	if o.ramps.Speed != nil {
		return o.ramps.Speed.WithMode(o.rampMode).String()
	}
	return o.speed
}

// printPlan is --dry-run: the prediction of 'reprise check' for the same
// flags, and nothing sent.
func (o *replayOptions) printPlan(ctx context.Context, paths []string, w io.Writer) error {
	plan := check.Plan{Scale: o.scale, ScaleRamp: nil, Rate: o.rate.PerSecond, MaxInFlight: o.maxInFlight,
		MaxSessions: o.maxSessions, Rejected: o.rejected, CloneStagger: o.stagger, Connections: o.connections}
	switch v := o.pacer().(type) {
	case replay.Max:
		plan.Max = true
	case replay.Speed:
		plan.Speed = float64(v)
	case *ramp.Ramp:
		plan.SpeedRamp = v
	}
	if o.ramps.Scale != nil {
		plan.ScaleRamp = o.ramps.Scale.WithMode(o.rampMode)
	}
	rec, err := loadForCheck(ctx, paths, check.LoadOptions{
		Filter: check.Filter{Include: o.include, Exclude: o.exclude, Methods: o.methods, From: o.from, To: o.to, Sessions: o.sessions},
		Keys:   session.SessionKeys(o.sessionKeys),
	})
	if err != nil {
		return err
	}
	res, err := check.CheckPlan(rec, plan, check.DefaultThresholds())
	if err != nil {
		return err
	}
	p := res.Plan.Predicted
	fmt.Fprintf(w, "dry run: nothing sent. plan %s against %s\n", res.Plan.Plan, o.target)
	fmt.Fprintf(w, "  duration          %.1fs (%.1fs without caps or order waits)\n", p.DurationS, p.PlannedS)
	fmt.Fprintf(w, "  requests          %d (%d left out by filters)\n", p.Requests, res.Plan.FilteredOut)
	fmt.Fprintf(w, "  sessions          %d, at most %d at once\n", p.Sessions, p.PeakSessions)
	fmt.Fprintf(w, "  peak req/s        %d (mean %.1f; uncapped demand peaks at %d)\n", p.PeakRPS, p.MeanRPS, res.Plan.Demand.PeakRPS)
	fmt.Fprintf(w, "  peak concurrency  %d requests in flight\n", p.PeakConcurrency)
	fmt.Fprintf(w, "  refresh events    %d (peak %d per second)\n", p.Refreshes, p.PeakRefreshesPerSecond)
	fmt.Fprintf(w, "  lag p99           %.1fms\n", p.Lag.P99)
	fmt.Fprintf(w, "  guards            %s over %v\n", o.abortOn.Rules(), o.abortWindow)
	var stages []ramp.StagePlan
	switch {
	case plan.SpeedRamp != nil:
		stages = plan.SpeedRamp.Plan(rec.Span)
	case plan.ScaleRamp != nil:
		stages = plan.ScaleRamp.Plan(time.Duration(p.PlannedS * float64(time.Second)))
	}
	if len(stages) == 0 {
		fmt.Fprintf(w, "  stages            none (one speed: %s)\n", o.speedText())
	}
	for _, s := range stages {
		fmt.Fprintf(w, "  stage %-11s %6.1fs - %6.1fs  value %g -> %g\n", s.Name, s.Start.Seconds(), s.End.Seconds(), s.Value, s.EndValue)
	}
	return nil
}

// libOptions turns the flags into the library's options.
func (o *replayOptions) libOptions() ([]replay.Option, error) {
	pacer, err := replay.ParseSpeed(o.speed)
	if err != nil {
		return nil, fmt.Errorf("--speed: %w", err)
	}
	if _, err := parseSessionKeys(o.sessionKeys); err != nil {
		return nil, err
	}
	if o.ramps.Speed != nil {
		if o.speed != "1" {
			return nil, errors.New("--speed and a --ramp of speeds both set the speed: give one")
		}
		pacer = o.ramps.Speed.WithMode(o.rampMode)
	}
	if o.ramps.Scale != nil && o.scale != 1 {
		return nil, errors.New("--scale and a --ramp of scales both set the scale: give one")
	}
	opts := []replay.Option{
		replay.WithPacer(pacer),
		replay.WithScale(o.scale),
		replay.WithCloneStagger(o.stagger),
		replay.WithMaxInFlight(o.maxInFlight),
		replay.WithConnections(o.connections),
		replay.WithProtocol(o.protocol),
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
	tc, err := replayTLS(o.ca, o.sni)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, replay.WithTLSConfig(tc))
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
	if o.ramps.Scale != nil {
		opts = append(opts, replay.WithScaleRamp(o.ramps.Scale.WithMode(o.rampMode)))
	}
	g, err := guard.New(o.abortOn.Rules(), guard.WithWindow(o.abortWindow))
	if err != nil {
		return nil, fmt.Errorf("--abort-on/--abort-window: %w", err)
	}
	if o.compare {
		c, err := compare.New(compare.WithIgnore(o.compareSkip...))
		if err != nil {
			return nil, fmt.Errorf("--compare-ignore: %w", err)
		}
		opts = append(opts, replay.WithCompare(c))
	} else if len(o.compareSkip) > 0 {
		return nil, errors.New("--compare-ignore is only used with --compare: add --compare")
	}
	opts = append(opts,
		replay.WithRate(o.rate),
		replay.WithMaxSessions(o.maxSessions),
		replay.WithGuard(g),
		replay.WithDrainTimeout(o.drain),
	)
	scaleOut, err := o.shardOptions(os.Getenv, time.Now())
	if err != nil {
		return nil, err
	}
	opts = append(opts, scaleOut...)
	// Check every option now, so a mistake is a usage error before
	// anything is opened or sent.
	if _, err := replay.New("http://127.0.0.1", opts...); err != nil {
		return nil, err
	}
	return opts, nil
}

func writeHTML(path string, rep *replay.Report) error {
	f, err := createPrivate(path)
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	if err := htmlreport.WriteReplay(f, rep); err != nil {
		f.Close()
		return fmt.Errorf("--html %s: %w", path, err)
	}
	return f.Close()
}

func writeReport(path string, rep *replay.Report) error {
	f, err := createPrivate(path)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("--report %s: %w", path, err)
	}
	return f.Close()
}

// startCPUProfile writes a pprof CPU profile of the run to path (the
// hidden --cpuprofile flag, for developers measuring the engine's own
// cost: go tool pprof reprise FILE); stop flushes and closes it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, usagef(fmt.Errorf("--cpuprofile: %w (give a file in a writable directory)", err))
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w (one CPU profile at a time: run without it)", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// startHeapProfile profiles the heap at its largest (the hidden
// --memprofile flag, for developers measuring where the engine's memory
// goes: go tool pprof -sample_index=inuse_space reprise FILE). A profile
// taken at the end would show the report, not the run: it checks the live
// heap ten times a second and keeps the profile of the largest it saw
// (as of the collection that measured it); stop writes it to path.
func startHeapProfile(path string, warn io.Writer) (stop func()) {
	runtime.MemProfileRate = 4096 // every few KiB, not every 512: small objects add up
	done, finished := make(chan struct{}), make(chan struct{})
	var best bytes.Buffer
	go func() {
		defer close(finished)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var peak uint64
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak+peak/20 {
				peak = v
				best.Reset()
				_ = pprof.Lookup("heap").WriteTo(&best, 0)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if err := os.WriteFile(path, best.Bytes(), 0o644); err != nil {
			fmt.Fprintf(warn, "replay: --memprofile: %v\n", err)
		}
	}
}
