package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/check"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
)

// checkOptions are the flags of 'reprise check'.
type checkOptions struct {
	paths       []string
	speed       string
	scale       int
	ramps       ramp.Flag
	rampMode    ramp.Mode
	rate        ramp.Rate
	maxInFlight int
	maxSessions int
	rejected    string
	connections string
	include     []string
	exclude     []string
	methods     []string
	from, to    time.Duration
	sessions    int
	run         string
	asJSON      bool
	strict      bool
	sessionKeys string
	recompute   bool
	thresholds  check.Thresholds
}

// thresholdFlag is --threshold key=value, checked when the command line is
// read.
type thresholdFlag struct{ t *check.Thresholds }

func (f thresholdFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("threshold %q: write it as key=value, e.g. mix_fail=0.05", s)
	}
	return f.t.Set(strings.TrimSpace(k), v)
}
func (f thresholdFlag) String() string { return "" }
func (f thresholdFlag) Type() string   { return "key=value" }

// verdictError carries a check's verdict to the exit code: fail exits 1,
// warn exits 1 only with --strict, pass is no error at all.
type verdictError struct{ verdict check.Level }

func (e verdictError) Error() string {
	return fmt.Sprintf("realism check: %s (the reasons are listed above)", e.verdict)
}

// planFlags are the flags that describe a plan; with --run the report
// says what was played, so they are refused.
var planFlags = []string{"speed", "scale", "ramp", "ramp-mode", "rate", "max-inflight", "max-sessions", "rejected",
	"connections", "include-path", "exclude-path", "method", "from", "to", "sessions"}

// addCheck registers 'reprise check'.
func addCheck(root *cobra.Command) {
	o := &checkOptions{thresholds: check.DefaultThresholds()}
	c := &cobra.Command{
		Use:   "check RECORDING... [plan flags] [--run run.json]",
		Short: "Judge how real a replay is: predict a plan's load and distortions, or compare a run with its recording",
		Long: `Check answers "will this rehearsal look like real life, and will it hurt?"

Before a replay, give the recording and the same plan flags as 'reprise
replay' (--speed, --scale, --ramp, --rate, --max-inflight, --max-sessions,
filters). Check simulates the schedule on the recording's own timing and
predicts the load (peak requests per second, requests in flight, sessions
at once) and how the plan distorts real usage: refreshes per second and the
share of refreshes in the busiest tenth of seconds, tokens refreshed sooner
than their server-side lifetime (which never compresses) or after it,
recorded 401s that will not recur, and caps that make the schedule slip,
with how far and for how long.

The model: each request is due at its recorded offset mapped through the
speed or ramp (clones shifted by 50ms each); its service time is the
recorded one, never compressed; a request waits for the requests of its
session that had completed before it started, and (connections as
recorded, replay's default) for the request before it on its recorded
HTTP/1 connection, then for an in-flight slot and the rate cap. What the target sees is what this model sends. Sessions
are the ones replay plays: --session-keys picks them exactly as replay's
does (auto: as recorded when the capture tracked sessions, else recomputed).

After a replay, add --run with the replay's report (reprise replay
--report run.json): check compares the request mix by route (total
variation distance), inter-arrival, think-time and session-length
distributions (Kolmogorov-Smirnov), schedule lag, order waits, errors,
status changes, failed sessions and refreshes at peak with the recording.
A figure the report does not hold is printed as "not measured".

GoReplay .gor and HAR files are read in place of a recording, imported on
the fly (sessions from the identity tracker, as 'reprise import' gives them).

Verdict: pass, warn or fail, one line per reason. Exit status: 0 on pass
and on warn, 1 on fail (and on warn with --strict), 2 on a usage mistake.
Thresholds: --threshold key=value (shares as 0.05 or 5%, lags in
seconds; 0 turns a check off); the keys and defaults are printed by --json
under "thresholds".`,
		Example: `  # will 10x with a ramp and a cap look real?
  reprise check traffic.rpz --ramp 1x:2m,5x:2m,10x --rate 2000/s

  # ten times the users at recorded speed, for a CI gate on warnings too
  reprise check traffic.rpz --scale 10 --strict

  # after the replay: how did it compare with the recording?
  reprise replay traffic.rpz --target http://127.0.0.1:8089 --report run.json
  reprise check traffic.rpz --run run.json --json | jq .verdict

  # a tighter bar on the request mix, and the refresh compression check off
  reprise check traffic.rpz --speed 5 --threshold mix_fail=5% --threshold refresh_compression_fail=0`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.paths = args
			if o.run != "" {
				for _, name := range planFlags {
					if c.Flags().Changed(name) {
						return usagef(fmt.Errorf("--%s describes a plan, but --run reads what was played from the report: drop --%s", name, name))
					}
				}
			}
			return checkRun(c, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.speed, "speed", "1", "time compression: a number from 0.1 to 100, or max")
	f.IntVar(&o.scale, "scale", 1, "replay every session this many times as independent clones")
	f.Var(&o.ramps, "ramp", "stages of speed or scale, e.g. 1x:2m,2x:2m,5x or scale=1:2m,scale=3 (may be given twice)")
	f.Var(&o.rampMode, "ramp-mode", "how stages move to the next: step or linear")
	f.Var(&o.rate, "rate", "cap on requests per second for the whole run, e.g. 500/s")
	f.IntVar(&o.maxInFlight, "max-inflight", replay.DefaultMaxInFlight, "cap on requests in flight at once")
	f.IntVar(&o.maxSessions, "max-sessions", 0, "cap on sessions active at once (0: none)")
	f.StringVar(&o.rejected, "rejected", replay.RejectedAsRecorded, "what replay does with requests the recorded server refused with 401: recorded, live or skip")
	f.StringVar(&o.connections, "connections", replay.ConnectionsRecorded, "as replay's --connections: recorded (a request waits for the one before it on its recorded connection) or pooled")
	f.StringArrayVar(&o.include, "include-path", nil, "replay only request-targets matching this regular expression (repeatable)")
	f.StringArrayVar(&o.exclude, "exclude-path", nil, "leave out request-targets matching this regular expression (repeatable)")
	f.StringSliceVar(&o.methods, "method", nil, "replay only these methods, e.g. GET,POST")
	f.DurationVar(&o.from, "from", 0, "replay from this offset into the recording")
	f.DurationVar(&o.to, "to", 0, "replay up to this offset into the recording (0: the end)")
	f.IntVar(&o.sessions, "sessions", 0, "replay only the first N sessions (0: all)")
	f.StringVar(&o.run, "run", "", "compare the replay report in this file (reprise replay --report) with the recording")
	f.BoolVar(&o.asJSON, "json", false, "print one JSON document with stable snake_case names")
	f.BoolVar(&o.strict, "strict", false, "exit 1 on warn too, not only on fail")
	addSessionKeysFlag(f, &o.sessionKeys)
	f.BoolVar(&o.recompute, "recompute", false, "the same as --session-keys recompute")
	f.Var(thresholdFlag{&o.thresholds}, "threshold", "change a threshold, e.g. mix_fail=5% (keys: "+strings.Join(check.ThresholdKeys(), ", ")+")")
	root.AddCommand(c)
}

// plan turns the flags into a check.Plan.
func (o *checkOptions) plan() (check.Plan, error) {
	p := check.Plan{Scale: o.scale, Rate: o.rate.PerSecond, MaxInFlight: o.maxInFlight, MaxSessions: o.maxSessions, Rejected: o.rejected, Connections: o.connections}
	switch o.connections {
	case replay.ConnectionsRecorded, replay.ConnectionsPooled:
	default:
		return p, fmt.Errorf("--connections %q: use %s or %s", o.connections, replay.ConnectionsRecorded, replay.ConnectionsPooled)
	}
	switch o.rejected {
	case replay.RejectedAsRecorded, replay.RejectedLive, replay.RejectedSkip:
	default:
		return p, fmt.Errorf("--rejected %q: use recorded, live or skip", o.rejected)
	}
	pacer, err := replay.ParseSpeed(o.speed)
	if err != nil {
		return p, err
	}
	switch v := pacer.(type) {
	case replay.Max:
		p.Max = true
	case replay.Speed:
		p.Speed = float64(v)
	}
	if o.ramps.Speed != nil {
		p.SpeedRamp = o.ramps.Speed.WithMode(o.rampMode)
	}
	if o.ramps.Scale != nil {
		p.ScaleRamp = o.ramps.Scale.WithMode(o.rampMode)
	}
	if o.scale < 1 {
		return p, fmt.Errorf("--scale %d: give 1 or more", o.scale)
	}
	if o.maxInFlight < 1 {
		return p, fmt.Errorf("--max-inflight %d: give 1 or more", o.maxInFlight)
	}
	if o.maxSessions < 0 || o.sessions < 0 {
		return p, fmt.Errorf("--max-sessions and --sessions take 0 (none) or more")
	}
	return p, nil
}

// keys is --session-keys, or recompute for --recompute (its older
// spelling); given both, they must agree.
func (o *checkOptions) keys(given bool) (session.SessionKeys, error) {
	k, err := parseSessionKeys(o.sessionKeys)
	if err != nil || !o.recompute {
		return k, err
	}
	if given && k != session.KeysRecompute {
		return "", fmt.Errorf("--recompute and --session-keys %s contradict each other", k)
	}
	return session.KeysRecompute, nil
}

func checkRun(c *cobra.Command, o *checkOptions) error {
	ctx := c.Context()
	keys, err := o.keys(c.Flags().Changed("session-keys"))
	if err != nil {
		return usagef(err)
	}
	lo := check.LoadOptions{Keys: keys}
	var plan check.Plan
	if o.run == "" {
		if plan, err = o.plan(); err != nil {
			return usagef(err)
		}
		if !c.Flags().Changed("max-inflight") {
			plan.MaxInFlight = 0 // replay's default, and say so
		}
		lo.Filter = check.Filter{Include: o.include, Exclude: o.exclude, Methods: o.methods, From: o.from, To: o.to, Sessions: o.sessions}
	}
	var run *check.RunData
	if o.run != "" {
		f, err := os.Open(o.run)
		if err != nil {
			return fmt.Errorf("--run: %w", err)
		}
		run, err = check.ReadRun(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--run %s: %w", o.run, err)
		}
	}
	rec, err := loadForCheck(ctx, o.paths, lo)
	if err != nil {
		return err
	}
	var res *check.Result
	if run != nil {
		res, err = check.CheckRun(rec, run, o.thresholds)
	} else {
		res, err = check.CheckPlan(rec, plan, o.thresholds)
	}
	if err != nil {
		return err
	}
	out := c.OutOrStdout()
	if o.asJSON {
		err = res.WriteJSON(out)
	} else {
		err = res.WriteText(out)
	}
	if err != nil {
		return err
	}
	if res.Verdict == check.Fail || (o.strict && res.Verdict == check.Warn) {
		return verdictError{res.Verdict}
	}
	return nil
}
