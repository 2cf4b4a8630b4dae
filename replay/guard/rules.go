// Package guard stops a replay by itself before it hurts the target: the
// --abort-on rules evaluated live over a sliding window, the --on-abort
// command (the user's rollback), the orderly stop that a trip or SIGINT
// starts, and the refusal to replay against the recording's own server.
//
// # The --abort-on grammar
//
//	abort-on  = "none" | rule { "," rule }
//	rule      = metric op threshold
//	op        = ">" | ">=" | "<" | "<="
//	metric    threshold
//	error_rate        percent, e.g. 5%     requests that failed (no response, or 5xx)
//	status_5xx_rate   percent              responses with status 500-599
//	p50 p90 p95 p99   duration, e.g. 2s    latency percentile, measured from the due time
//	max               duration             the slowest request
//	lag               duration             how late requests were sent (send - due), p99
//	timeouts          count or percent     requests that timed out: timeouts>10, timeouts>1%
//	rps               number               requests completed per second: rps<50
//
// Durations take ms, s or m (500ms, 2s, 1m; any Go duration works). Every
// rule is evaluated over the last --abort-window (10s by default), never
// over the whole run, so a guard reacts to what the target does now.
//
// # The defaults
//
// Unless --abort-on is given, DefaultRules apply: error_rate>20% and
// p99>5s, over 10 s, each needing at least 20 requests in the window. They
// stop a replay that is clearly breaking the target and leave a healthy
// one alone. Lag is not a default guard because --rate and --max-inflight
// make lag on purpose. --abort-on none turns every guard off.
//
// # The minimum sample
//
// A rate or a percentile over a handful of requests means little: one
// early error is a 100% error rate. Rules on rates, percentiles and lag
// are evaluated only when the window holds at least MinSamples requests
// (20 by default, WithMinSamples). Count rules (timeouts>10) need no
// minimum, and rps rules wait until one full window has passed.
package guard

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"flag"
)

// Metric names what a rule measures.
type Metric string

// The metrics a rule can watch.
const (
	ErrorRate     Metric = "error_rate"
	Status5xxRate Metric = "status_5xx_rate"
	P50           Metric = "p50"
	P90           Metric = "p90"
	P95           Metric = "p95"
	P99           Metric = "p99"
	Max           Metric = "max"
	Lag           Metric = "lag"
	Timeouts      Metric = "timeouts"
	RPS           Metric = "rps"
)

// unitKind says how a metric's threshold is written.
type unitKind int

const (
	unitPercent  unitKind = iota // 5%
	unitDuration                 // 2s
	unitCount                    // 10 (or a percent, for timeouts)
	unitRate                     // 50 (per second)
)

var metrics = map[Metric]unitKind{
	ErrorRate: unitPercent, Status5xxRate: unitPercent,
	P50: unitDuration, P90: unitDuration, P95: unitDuration, P99: unitDuration, Max: unitDuration, Lag: unitDuration,
	Timeouts: unitCount, RPS: unitRate,
}

var metricNames = "error_rate, status_5xx_rate, p50, p90, p95, p99, max, lag, timeouts, rps"

// Op is a comparison.
type Op string

// The comparisons.
const (
	Greater      Op = ">"
	GreaterEqual Op = ">="
	Less         Op = "<"
	LessEqual    Op = "<="
)

func (o Op) holds(v, threshold float64) bool {
	switch o {
	case Greater:
		return v > threshold
	case GreaterEqual:
		return v >= threshold
	case Less:
		return v < threshold
	case LessEqual:
		return v <= threshold
	}
	return false
}

// Rule is one parsed guard, e.g. p99>2s.
type Rule struct {
	Metric Metric
	Op     Op
	// Threshold is in the metric's base unit: a fraction for rates
	// (0.05 for 5%), seconds for durations, a count for timeouts,
	// requests per second for rps.
	Threshold float64
	// Percent is set for a timeouts rule written as a percentage: it
	// then compares the share of requests that timed out.
	Percent bool
}

// String writes the rule back in the --abort-on grammar.
func (r Rule) String() string {
	return string(r.Metric) + string(r.Op) + r.format(r.Threshold)
}

// format writes v in the rule's unit, as a person reads it.
func (r Rule) format(v float64) string {
	switch {
	case metrics[r.Metric] == unitPercent || r.Percent:
		return strconv.FormatFloat(roundTo(v*100, 3), 'f', -1, 64) + "%"
	case metrics[r.Metric] == unitDuration:
		return formatSeconds(v)
	default:
		return strconv.FormatFloat(roundTo(v, 3), 'f', -1, 64)
	}
}

func roundTo(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func formatSeconds(v float64) string {
	d := time.Duration(math.Round(v * 1e9))
	switch {
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d >= time.Second:
		return strconv.FormatFloat(roundTo(v, 3), 'f', -1, 64) + "s"
	default:
		return strconv.FormatFloat(roundTo(v*1000, 3), 'f', -1, 64) + "ms"
	}
}

// Rules is a parsed --abort-on value; empty means no guard.
type Rules []Rule

// String writes the rules in the --abort-on grammar ("none" when empty).
func (rs Rules) String() string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// DefaultRules are the guards in force unless --abort-on says otherwise:
// error_rate>20% and p99>5s (see the package documentation).
func DefaultRules() Rules {
	return Rules{
		{Metric: ErrorRate, Op: Greater, Threshold: 0.20},
		{Metric: P99, Op: Greater, Threshold: 5},
	}
}

// MaxRules bounds one --abort-on value.
const MaxRules = 32

// ParseError is an --abort-on value that cannot be used.
type ParseError struct {
	Input string
	Rule  int // the rule's position from 1; 0 for the whole value
	Msg   string
}

func (e *ParseError) Error() string {
	if e.Rule > 0 {
		return fmt.Sprintf("abort-on %q, rule %d: %s", e.Input, e.Rule, e.Msg)
	}
	return fmt.Sprintf("abort-on %q: %s", e.Input, e.Msg)
}

// ParseRules reads an --abort-on value. "none" gives no rules.
func ParseRules(s string) (Rules, error) {
	in := strings.TrimSpace(s)
	if strings.EqualFold(in, "none") {
		return Rules{}, nil
	}
	if in == "" {
		return nil, &ParseError{Input: s, Msg: `empty: give rules such as "error_rate>5%,p99>2s", or none`}
	}
	parts := strings.Split(in, ",")
	if len(parts) > MaxRules {
		return nil, &ParseError{Input: s, Msg: fmt.Sprintf("%d rules is more than %d", len(parts), MaxRules)}
	}
	out := make(Rules, 0, len(parts))
	for i, p := range parts {
		r, msg := parseRule(strings.TrimSpace(p))
		if msg != "" {
			return nil, &ParseError{Input: s, Rule: i + 1, Msg: msg}
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRule(p string) (Rule, string) {
	if p == "" {
		return Rule{}, `empty rule: remove the extra ","`
	}
	if strings.EqualFold(p, "none") {
		return Rule{}, `"none" stands alone: drop the other rules, or drop none`
	}
	i := strings.IndexAny(p, "<>=")
	if i < 0 {
		return Rule{}, fmt.Sprintf("%q has no comparison: write it like p99>2s", p)
	}
	name := Metric(strings.ToLower(strings.TrimSpace(p[:i])))
	rest := p[i:]
	var op Op
	for _, o := range []Op{GreaterEqual, LessEqual, Greater, Less} {
		if strings.HasPrefix(rest, string(o)) {
			op = o
			break
		}
	}
	if op == "" {
		return Rule{}, fmt.Sprintf("%q: the comparison must be >, >=, < or <=", p)
	}
	unit, ok := metrics[name]
	if !ok {
		if name == "" {
			return Rule{}, fmt.Sprintf("%q names no metric: use one of %s", p, metricNames)
		}
		return Rule{}, fmt.Sprintf("unknown metric %q: use one of %s", name, metricNames)
	}
	val := strings.TrimSpace(rest[len(op):])
	if val == "" {
		return Rule{}, fmt.Sprintf("%q has no threshold after %s", p, op)
	}
	r := Rule{Metric: name, Op: op}
	pct := strings.HasSuffix(val, "%")
	switch {
	case unit == unitPercent || (unit == unitCount && pct):
		if !pct {
			return Rule{}, fmt.Sprintf("%s takes a percentage: write %s%s%s%%", name, name, op, val)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val[:len(val)-1]), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
			return Rule{}, fmt.Sprintf("%q is not a percentage from 0%% to 100%%", val)
		}
		r.Threshold = f / 100
		r.Percent = unit == unitCount
	case unit == unitDuration:
		if _, err := strconv.ParseFloat(val, 64); err == nil {
			return Rule{}, fmt.Sprintf("%q needs a unit: write %ss or %sms", val, val, val)
		}
		d, err := time.ParseDuration(val)
		if err != nil || d < 0 {
			return Rule{}, fmt.Sprintf("%q is not a duration: write it like 500ms, 2s or 1m", val)
		}
		if d > time.Hour {
			return Rule{}, fmt.Sprintf("%q is over an hour: no replay waits that long", val)
		}
		r.Threshold = d.Seconds()
	default:
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			what := "a count, like timeouts>10, or a percentage, like timeouts>1%"
			if unit == unitRate {
				what = "requests per second, like rps<50"
			}
			return Rule{}, fmt.Sprintf("%q is not a number: %s takes %s", val, name, what)
		}
		r.Threshold = f
	}
	return r, ""
}

// Usage is --abort-on's help text.
const Usage = `stop the replay when a rule holds over the last --abort-window: ` +
	`comma-separated metric op threshold, metrics error_rate status_5xx_rate p50 p90 p95 p99 max lag timeouts rps, ` +
	`e.g. "error_rate>5%,p99>2s,lag>5s"; "none" turns guards off`

// Flag is the value of --abort-on, a flag.Value. Its zero value holds the
// defaults; the first --abort-on replaces them and later ones add rules.
//
//	var ab guard.Flag
//	cmd.Flags().Var(&ab, "abort-on", `stop when a rule holds over the window (default "error_rate>20%,p99>5s"; "none" for no guard)`)
type Flag struct {
	rules Rules
	set   bool
}

var _ flag.Value = (*Flag)(nil)

// Set parses one --abort-on value.
func (f *Flag) Set(s string) error {
	rs, err := ParseRules(s)
	if err != nil {
		return err
	}
	if !f.set {
		f.rules, f.set = nil, true
	} else if len(rs) == 0 || (len(f.rules) == 0) {
		return fmt.Errorf("abort-on %q: none cannot be combined with other rules", s)
	}
	f.rules = append(f.rules, rs...)
	if f.rules == nil {
		f.rules = Rules{}
	}
	return nil
}

// Rules returns the rules in force: the defaults unless Set was called.
func (f *Flag) Rules() Rules {
	if !f.set {
		return DefaultRules()
	}
	return append(Rules{}, f.rules...)
}

func (f *Flag) String() string { return f.Rules().String() }

// Type names the value in --help.
func (f *Flag) Type() string { return "rules" }
