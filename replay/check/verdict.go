package check

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Level is a verdict: pass, warn or fail.
type Level string

// The levels, from best to worst.
const (
	Pass Level = "pass"
	Warn Level = "warn"
	Fail Level = "fail"
)

func (l Level) rank() int {
	switch l {
	case Warn:
		return 1
	case Fail:
		return 2
	}
	return 0
}

// Finding is one reason for a verdict, a line a person understands.
type Finding struct {
	Level Level `json:"level"`
	// Check names what was checked, stable for scripts: "refresh_peak",
	// "refresh_compression", "expired_tokens", "unrepeated_401s",
	// "rate_cap", "inflight_cap", "session_cap", "lag", "filters",
	// "speed_max", "route_mix", "inter_arrival", "think_time",
	// "session_length", "order_wait", "error_rate", "status_mismatch",
	// "failed_sessions", "duration", "requests".
	Check   string `json:"check"`
	Message string `json:"message"`
}

func (f Finding) String() string { return string(f.Level) + ": " + f.Message }

// Thresholds decide the verdict. Shares are fractions (0.05 is 5%);
// a threshold of 0 turns its check off. JSON names double as the keys of
// Set and of the CLI's --threshold flag.
type Thresholds struct {
	// Refreshes at peak: how many points the refreshes may crowd the
	// busiest tenth of seconds beyond the requests (refresh share less
	// request share there) more than in the recording, beyond two
	// standard errors of chance.
	RefreshPeakWarn float64 `json:"refresh_peak_warn"`
	RefreshPeakFail float64 `json:"refresh_peak_fail"`
	// MinRefreshes is how many refreshes the recording needs before the
	// refresh checks judge it (fewer are noise).
	MinRefreshes float64 `json:"min_refreshes"`
	// Refresh compression: how many times sooner than recorded (in wall
	// time) tokens are refreshed, i.e. how refresh-heavy the replay is.
	RefreshCompressionWarn float64 `json:"refresh_compression_warn"`
	RefreshCompressionFail float64 `json:"refresh_compression_fail"`
	// ExpiredFail is the share of requests that may carry an expired
	// access token beyond the recording's own before the check fails (any
	// at all warns).
	ExpiredFail float64 `json:"expired_fail"`
	// Lag: the p99 of schedule lag (predicted or measured), in seconds.
	LagWarn float64 `json:"lag_warn_s"`
	LagFail float64 `json:"lag_fail_s"`
	// SlipAt is the lag, in seconds, above which the schedule counts as
	// slipping when saying for how long it slips.
	SlipAt float64 `json:"slip_at_s"`
	// FilteredWarn is the share of requests the plan's filters may leave
	// out before the check warns.
	FilteredWarn float64 `json:"filtered_warn"`
	// Request mix by route: total variation distance from the recording.
	MixWarn float64 `json:"mix_warn"`
	MixFail float64 `json:"mix_fail"`
	// Distributions (inter-arrival, think time, session length): the
	// two-sample Kolmogorov-Smirnov statistic beyond its value by chance
	// (KSNoise).
	KSWarn float64 `json:"ks_warn"`
	KSFail float64 `json:"ks_fail"`
	// Transport errors per request sent.
	ErrorWarn float64 `json:"error_rate_warn"`
	ErrorFail float64 `json:"error_rate_fail"`
	// Responses whose status differs from the recording's.
	MismatchWarn float64 `json:"status_mismatch_warn"`
	MismatchFail float64 `json:"status_mismatch_fail"`
	// Sessions that failed or went uncorrelated, of all sessions.
	SessionWarn float64 `json:"failed_sessions_warn"`
	SessionFail float64 `json:"failed_sessions_fail"`
}

// DefaultThresholds are the thresholds a check uses unless told others.
// They are meant for a realism check before a demo: a replay as real as
// the recording passes, an unnatural one warns, one that will misbehave
// (tokens expiring, schedules slipping, a mix that is not real usage)
// fails.
func DefaultThresholds() Thresholds {
	return Thresholds{
		RefreshPeakWarn: 0.10, RefreshPeakFail: 0.20, MinRefreshes: 10,
		RefreshCompressionWarn: 2, RefreshCompressionFail: 20,
		ExpiredFail: 0.01,
		LagWarn:     0.25, LagFail: 1, SlipAt: 1,
		FilteredWarn: 0.01,
		MixWarn:      0.02, MixFail: 0.10,
		KSWarn: 0.15, KSFail: 0.35,
		ErrorWarn: 0.001, ErrorFail: 0.01,
		MismatchWarn: 0.01, MismatchFail: 0.05,
		SessionWarn: 0.001, SessionFail: 0.05,
	}
}

// ThresholdKeys lists the names Set accepts, in order.
func ThresholdKeys() []string {
	t := reflect.TypeOf(Thresholds{})
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = t.Field(i).Tag.Get("json")
	}
	return keys
}

// Set changes the threshold named key (its JSON name) to value, a number
// ("0.05") or a percentage ("5%") for shares.
func (t *Thresholds) Set(key, value string) error {
	v := reflect.ValueOf(t).Elem()
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("json") != key {
			continue
		}
		s := strings.TrimSpace(value)
		div := 1.0
		if strings.HasSuffix(s, "%") {
			s, div = strings.TrimSuffix(s, "%"), 100
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return fmt.Errorf("threshold %s=%q: want a number of 0 or more, e.g. %s=0.05 or %s=5%%", key, value, key, key)
		}
		v.Field(i).SetFloat(f / div)
		return nil
	}
	return fmt.Errorf("no threshold %q: use one of %s", key, strings.Join(ThresholdKeys(), ", "))
}

// judge returns the level of value against a warn and a fail threshold
// (0 turns that level off).
func judge(value, warn, fail float64) Level {
	switch {
	case fail > 0 && value >= fail:
		return Fail
	case warn > 0 && value >= warn:
		return Warn
	}
	return Pass
}

// Result is a check's answer. Its JSON field names are stable.
type Result struct {
	Verdict  Level     `json:"verdict"`
	Findings []Finding `json:"findings"`
	// Recording describes the recording as it was (all its requests).
	Recording RecordingInfo `json:"recording"`
	// Plan is set by CheckPlan, Run by CheckRun.
	Plan       *PlanResult `json:"plan,omitempty"`
	Run        *RunResult  `json:"run,omitempty"`
	Thresholds Thresholds  `json:"thresholds"`
}

// RecordingInfo summarises the recording.
type RecordingInfo struct {
	Paths        []string `json:"paths,omitempty"`
	SessionsFrom string   `json:"sessions_from"`
	Damaged      int      `json:"damaged_regions,omitempty"`
	Load         Profile  `json:"load"`
}

func (r *Result) add(level Level, check, format string, a ...any) {
	if level == Pass {
		return
	}
	r.Findings = append(r.Findings, Finding{Level: level, Check: check, Message: fmt.Sprintf(format, a...)})
}

// finish orders the findings, worst first, and sets the verdict.
func (r *Result) finish() {
	slices.SortStableFunc(r.Findings, func(a, b Finding) int { return b.Level.rank() - a.Level.rank() })
	r.Verdict = Pass
	if len(r.Findings) > 0 {
		r.Verdict = r.Findings[0].Level
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
}

// pct formats a share as a percentage.
func pct(f float64) string {
	switch {
	case f == 0:
		return "0%"
	case f < 0.01:
		return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(100*f, 'f', 0, 64) + "%"
}

// secs formats seconds for a person: 850ms, 4.2s, 1m12s.
func secs(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
	return d.Round(time.Second).String()
}

// clock formats seconds since the start as m:ss.
func clock(s float64) string {
	n := int(s)
	return fmt.Sprintf("%d:%02d", n/60, n%60)
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return a / b
}
