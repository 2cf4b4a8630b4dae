// Package ramp paces a replay: it maps a recording's offsets to wall-clock
// due times under a constant speed or a ramp of stages, parses the --ramp
// and --rate flags, and provides the concurrency caps (--max-inflight,
// --max-sessions) whose waits are measured, so a cap shows as lag.
//
// # The --ramp grammar
//
//	ramp     = stage { "," stage }
//	stage    = value [ ":" duration [ "~" ] ]
//	value    = number "x"            a speed stage:  2x, 0.5x
//	         | "scale=" integer      a scale stage:  scale=3
//	duration = a Go duration         30s, 2m, 1m30s
//
// Every stage but the last names how long it lasts, in wall-clock time; the
// last stage has no duration and lasts until the end of the recording. A
// stage is stepped: its value holds for its whole duration, then the next
// stage's value applies at once. A "~" after the duration makes the stage
// linear instead: the value moves evenly from this stage's value to the
// next stage's over the duration. --ramp-mode linear makes every stage
// linear.
//
//	1x:2m,2x:2m,5x:5m,10x        1x for 2 minutes, 2x for 2, 5x for 5, then 10x
//	1x:2m~,5x                    from 1x to 5x evenly over 2 minutes, then 5x
//	scale=1:2m,scale=3           each session once for 2 minutes, then 3 clones
//
// Speeds lie in [0.1, 100] like --speed; scales in [1, 1000]. A ramp holds
// speed stages or scale stages, not both; give --ramp twice for both.
//
// # Speed ramps change the clock rate
//
// A speed is the rate at which recording time passes per wall second. Under
// a ramp the recording offset reached after wall time w is the integral of
// the speed from 0 to w, so a request recorded at offset o is due at the
// wall time w where that integral equals o (Due), and Offset is the
// inverse. Both are exact for stepped and linear stages.
package ramp

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay/schedule"
)

// Limits of a stage's value, the same as --speed and --scale accept.
const (
	MinSpeed = schedule.MinSpeed
	MaxSpeed = schedule.MaxSpeed
	MinScale = 1
	MaxScale = 1000
	// MaxStages bounds a ramp, so that a mistaken flag cannot make a
	// schedule of millions of stages.
	MaxStages = 100
)

// Kind says what a ramp's stages set.
type Kind int

const (
	// KindSpeed stages set the speed multiplier ("2x").
	KindSpeed Kind = iota + 1
	// KindScale stages set how many clones of each session run ("scale=3").
	KindScale
)

func (k Kind) String() string {
	switch k {
	case KindSpeed:
		return "speed"
	case KindScale:
		return "scale"
	}
	return "unknown"
}

// Stage is one stage of a ramp.
type Stage struct {
	// Value is the speed multiplier (KindSpeed) or the scale (KindScale)
	// at the stage's start.
	Value float64
	// Duration is how long the stage lasts in wall-clock time; 0 for the
	// last stage, which lasts until the end.
	Duration time.Duration
	// Linear stages move evenly from Value to the next stage's Value over
	// Duration; stepped stages hold Value.
	Linear bool
}

// Ramp is a parsed --ramp value: stages of one kind over wall-clock time.
// The zero Ramp is not valid; make one with Parse or New. A Ramp is
// immutable and safe for concurrent use.
type Ramp struct {
	kind   Kind
	stages []Stage
	// Precomputed at construction: wall start of each stage, and the
	// recording offset reached at that start (speed ramps).
	starts  []time.Duration
	offsets []float64 // ns of recording time
	names   []string
	text    string
}

// ParseError is a --ramp or --rate value that cannot be used. Its message
// names the stage and the fix.
type ParseError struct {
	Input string // the whole flag value
	Stage int    // the stage's position from 1; 0 when it concerns the whole value
	Msg   string
}

func (e *ParseError) Error() string {
	if e.Stage > 0 {
		return fmt.Sprintf("ramp %q, stage %d: %s", e.Input, e.Stage, e.Msg)
	}
	return fmt.Sprintf("ramp %q: %s", e.Input, e.Msg)
}

// Parse reads a --ramp value (see the package documentation).
func Parse(s string) (*Ramp, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return nil, &ParseError{Input: s, Msg: `empty ramp: give stages such as "1x:2m,2x:2m,5x"`}
	}
	parts := strings.Split(in, ",")
	if len(parts) > MaxStages {
		return nil, &ParseError{Input: s, Msg: fmt.Sprintf("%d stages is more than %d: use fewer, longer stages", len(parts), MaxStages)}
	}
	var kind Kind
	stages := make([]Stage, 0, len(parts))
	for i, p := range parts {
		fail := func(format string, a ...any) error {
			return &ParseError{Input: s, Stage: i + 1, Msg: fmt.Sprintf(format, a...)}
		}
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fail(`empty stage: remove the extra ","`)
		}
		val, dur, hasDur := strings.Cut(p, ":")
		val = strings.TrimSpace(val)
		if strings.HasSuffix(val, "~") {
			return nil, fail("%q: \"~\" goes after a stage's duration (1x:2m~), and the last stage has none", p)
		}
		var st Stage
		var k Kind
		switch {
		case strings.HasPrefix(strings.ToLower(val), "scale="):
			k = KindScale
			n, err := strconv.Atoi(strings.TrimSpace(val[len("scale="):]))
			if err != nil || n < MinScale || n > MaxScale {
				return nil, fail("scale %q must be a whole number from %d to %d, e.g. scale=3", val[len("scale="):], MinScale, MaxScale)
			}
			st.Value = float64(n)
		case strings.HasSuffix(strings.ToLower(val), "x"):
			k = KindSpeed
			f, err := strconv.ParseFloat(strings.TrimSpace(val[:len(val)-1]), 64)
			if err != nil || math.IsNaN(f) {
				return nil, fail("speed %q is not a number: write it like 2x or 0.5x", val)
			}
			if f < MinSpeed || f > MaxSpeed {
				return nil, fail("speed %q is outside %gx..%gx", val, float64(MinSpeed), float64(MaxSpeed))
			}
			st.Value = f
		default:
			return nil, fail("%q is neither a speed nor a scale: write a speed like 2x or a scale like scale=3", val)
		}
		if kind == 0 {
			kind = k
		} else if k != kind {
			return nil, fail("mixes %s and %s stages: give --ramp once for speed and once for scale", kind, k)
		}
		if hasDur {
			dur = strings.TrimSpace(dur)
			if strings.HasSuffix(dur, "~") {
				st.Linear = true
				dur = strings.TrimSpace(dur[:len(dur)-1])
			}
			d, err := time.ParseDuration(dur)
			if err != nil {
				return nil, fail("duration %q is not a duration: write it like 30s, 2m or 1m30s", dur)
			}
			if d < time.Second {
				return nil, fail("duration %q is shorter than 1s: stages last at least a second", dur)
			}
			if d > 7*24*time.Hour {
				return nil, fail("duration %q is longer than a week", dur)
			}
			st.Duration = d
		}
		last := i == len(parts)-1
		if last && hasDur {
			return nil, fail("the last stage lasts until the end and takes no duration: write %q", val)
		}
		if !last && !hasDur {
			return nil, fail("only the last stage may go without a duration: write %s:2m (or another duration)", val)
		}
		stages = append(stages, st)
	}
	r, err := New(kind, stages)
	if err != nil {
		return nil, &ParseError{Input: s, Msg: err.Error()}
	}
	return r, nil
}

// New builds a ramp from stages, checking them as Parse does.
func New(kind Kind, stages []Stage) (*Ramp, error) {
	if kind != KindSpeed && kind != KindScale {
		return nil, errors.New("a ramp's kind must be speed or scale")
	}
	if len(stages) == 0 {
		return nil, errors.New("a ramp needs at least one stage")
	}
	if len(stages) > MaxStages {
		return nil, fmt.Errorf("a ramp has at most %d stages", MaxStages)
	}
	r := &Ramp{kind: kind, stages: append([]Stage(nil), stages...)}
	r.starts = make([]time.Duration, len(stages))
	r.offsets = make([]float64, len(stages))
	var at time.Duration
	var off float64
	for i, st := range r.stages {
		lo, hi := MinSpeed, float64(MaxSpeed)
		if kind == KindScale {
			lo, hi = MinScale, MaxScale
		}
		if !(st.Value >= lo && st.Value <= hi) {
			return nil, fmt.Errorf("stage %d: value %g is outside %g..%g", i+1, st.Value, lo, hi)
		}
		last := i == len(stages)-1
		if last {
			if st.Duration != 0 || st.Linear {
				return nil, fmt.Errorf("stage %d: the last stage lasts until the end: give it no duration and no ~", i+1)
			}
		} else if st.Duration <= 0 {
			return nil, fmt.Errorf("stage %d: every stage but the last needs a duration", i+1)
		}
		r.starts[i] = at
		r.offsets[i] = off
		if !last {
			d := float64(st.Duration)
			if st.Linear {
				off += d * (st.Value + stages[i+1].Value) / 2
			} else {
				off += d * st.Value
			}
			at += st.Duration
		}
	}
	r.text = r.format()
	r.names = strings.Split(r.text, ",")
	return r, nil
}

// Kind says whether the ramp sets speed or scale.
func (r *Ramp) Kind() Kind { return r.kind }

// Stages returns a copy of the ramp's stages.
func (r *Ramp) Stages() []Stage { return append([]Stage(nil), r.stages...) }

// String returns the ramp in the --ramp grammar; Parse(r.String()) gives
// the same ramp.
func (r *Ramp) String() string {
	if r == nil {
		return ""
	}
	return r.text
}

func (r *Ramp) format() string {
	var b strings.Builder
	for i, st := range r.stages {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.valueName(st.Value))
		if st.Duration > 0 {
			b.WriteByte(':')
			b.WriteString(shortDuration(st.Duration))
			if st.Linear {
				b.WriteByte('~')
			}
		}
	}
	return b.String()
}

func (r *Ramp) valueName(v float64) string {
	if r.kind == KindScale {
		return "scale=" + strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + "x"
}

// shortDuration prints 2m rather than 2m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// stageIndex returns the stage in force at wall time elapsed.
func (r *Ramp) stageIndex(elapsed time.Duration) int {
	i := len(r.starts) - 1
	for i > 0 && elapsed < r.starts[i] {
		i--
	}
	return i
}

// ValueAt returns the stage value (speed or scale) in force at wall time
// elapsed since the start; linear stages give the interpolated value.
func (r *Ramp) ValueAt(elapsed time.Duration) float64 {
	if elapsed < 0 {
		elapsed = 0
	}
	i := r.stageIndex(elapsed)
	st := r.stages[i]
	if !st.Linear {
		return st.Value
	}
	frac := float64(elapsed-r.starts[i]) / float64(st.Duration)
	return st.Value + (r.stages[i+1].Value-st.Value)*frac
}

// StageAt returns the index (from 0) and the name of the stage in force at
// wall time elapsed, e.g. 1, "2x:2m (2/4)".
func (r *Ramp) StageAt(elapsed time.Duration) (index int, name string) {
	if elapsed < 0 {
		elapsed = 0
	}
	i := r.stageIndex(elapsed)
	return i, r.StageName(i)
}

// StageName names stage i as it was written, e.g. "2x:2m" or "10x".
func (r *Ramp) StageName(i int) string {
	if i < 0 || i >= len(r.stages) {
		return ""
	}
	return r.names[i]
}

// StagePlan is one stage placed on the wall clock and on the recording.
type StagePlan struct {
	Index int
	Name  string
	// Start and End bound the stage in wall time since the replay's
	// start; End of the last stage is the run's end.
	Start, End time.Duration
	// From and To bound the recording offsets replayed in the stage
	// (speed ramps; for scale ramps they equal Start and End).
	From, To time.Duration
	// Value and EndValue are the stage's value at its start and end
	// (they differ for linear stages).
	Value, EndValue float64
}

// Plan places the stages on a recording of length span: when each starts
// and ends on the wall clock and which part of the recording it replays.
// Stages that begin after the recording ends are left out. It is what a dry
// run prints and what reports draw. For a scale ramp, which does not
// change the clock, give span as the run's wall length (the recording's
// span under the speed in force).
func (r *Ramp) Plan(span time.Duration) []StagePlan {
	var out []StagePlan
	end := span
	if r.kind == KindSpeed {
		end = r.Due(span)
	}
	for i, st := range r.stages {
		start := r.starts[i]
		if i > 0 && start >= end {
			break
		}
		stop := end
		if i < len(r.stages)-1 && r.starts[i+1] < end {
			stop = r.starts[i+1]
		}
		p := StagePlan{Index: i, Name: r.StageName(i), Start: start, End: stop, From: start, To: stop,
			Value: st.Value, EndValue: r.ValueAt(stop)}
		if !st.Linear {
			p.EndValue = st.Value
		}
		if r.kind == KindSpeed {
			p.From, p.To = r.Offset(start), r.Offset(stop)
		}
		out = append(out, p)
	}
	return out
}

// ActiveFrom returns the wall time from which clone k (from 0) of every
// session takes part under a scale ramp: the first moment the scale exceeds
// k. Clone 0 is always active; a clone the ramp never reaches gets ok false.
// The engine starts a clone's session only if its first request is due at
// or after ActiveFrom, so raising the scale adds whole sessions rather than
// cutting sessions in the middle.
func (r *Ramp) ActiveFrom(k int) (at time.Duration, ok bool) {
	if k <= 0 {
		return 0, true
	}
	target := float64(k)
	for i, st := range r.stages {
		if st.Value > target {
			return r.starts[i], true
		}
		if st.Linear && r.stages[i+1].Value > target {
			// value(t) = v0 + (v1-v0) t/D crosses target strictly after.
			frac := (target - st.Value) / (r.stages[i+1].Value - st.Value)
			return r.starts[i] + time.Duration(math.Floor(frac*float64(st.Duration))) + 1, true
		}
	}
	return 0, false
}

// A ramp is a schedule.Pacer: a speed ramp solves the integral of its
// speed for each due time, a scale ramp runs at 1x.
var _ schedule.Pacer = (*Ramp)(nil)

// Speed returns the speed at wall time elapsed; a scale ramp runs at 1x
// (combine it with a speed Pacer for other speeds).
func (r *Ramp) Speed(elapsed time.Duration) float64 {
	if r.kind != KindSpeed {
		return 1
	}
	return r.ValueAt(elapsed)
}

// Offset returns the recording offset reached at wall time elapsed: the
// integral of the speed from 0 to elapsed.
func (r *Ramp) Offset(elapsed time.Duration) time.Duration {
	if r.kind != KindSpeed {
		return elapsed
	}
	if elapsed <= 0 {
		return 0
	}
	i := r.stageIndex(elapsed)
	st := r.stages[i]
	tau := float64(elapsed - r.starts[i])
	off := r.offsets[i] + st.Value*tau
	if st.Linear {
		slope := (r.stages[i+1].Value - st.Value) / float64(st.Duration)
		off += slope * tau * tau / 2
	}
	return time.Duration(math.Round(off))
}

// Due returns the wall time at which recording offset is reached: the w
// with Offset(w) = offset, solved exactly within the stage that holds it.
func (r *Ramp) Due(offset time.Duration) time.Duration {
	if r.kind != KindSpeed {
		return offset
	}
	if offset <= 0 {
		return 0
	}
	o := float64(offset)
	i := len(r.offsets) - 1
	for i > 0 && o < r.offsets[i] {
		i--
	}
	st := r.stages[i]
	c := o - r.offsets[i]
	var tau float64
	if !st.Linear {
		tau = c / st.Value
	} else {
		// Solve a τ² + b τ = c with a = slope/2, b = v0; the form
		// 2c / (b + sqrt(b² + 4ac)) is stable for either sign of a.
		a := (r.stages[i+1].Value - st.Value) / float64(st.Duration) / 2
		b := st.Value
		disc := b*b + 4*a*c
		if disc < 0 {
			disc = 0
		}
		tau = 2 * c / (b + math.Sqrt(disc))
		if d := float64(st.Duration); tau > d {
			tau = d
		}
	}
	return r.starts[i] + time.Duration(math.Round(tau))
}
