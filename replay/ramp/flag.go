package ramp

import (
	"fmt"
	"strings"

	"flag"
)

// Help texts for the flags, for the CLI's --help.
const (
	Usage     = `stages of speed or scale over wall time: value[:duration[~]],...; the last stage has no duration; "~" moves linearly to the next stage, e.g. 1x:2m,2x:2m,5x:5m,10x or 1x:2m~,5x or scale=1:2m,scale=3 (may be given once for speed and once for scale)`
	ModeUsage = `how stages move to the next: step (hold, then jump) or linear (move evenly), for every stage`
	RateUsage = `one hard cap on requests per second for the whole run, e.g. 100/s, 6000/m or 100 (0 for none); waiting at the cap shows as lag`
)

// Flag is the value of --ramp: a flag.Value that parses when the command
// line is read, so a mistake fails with exit 2 before anything is sent. It
// may be given twice, once with speed stages and once with scale stages.
//
//	var rf ramp.Flag
//	cmd.Flags().Var(&rf, "ramp", "stages of speed or scale, e.g. 1x:2m,2x:2m,5x")
type Flag struct {
	Speed *Ramp // nil when no speed ramp was given
	Scale *Ramp // nil when no scale ramp was given
}

var _ flag.Value = (*Flag)(nil)

// Set parses one --ramp value.
func (f *Flag) Set(s string) error {
	r, err := Parse(s)
	if err != nil {
		return err
	}
	switch r.Kind() {
	case KindSpeed:
		if f.Speed != nil {
			return fmt.Errorf("ramp %q: a speed ramp was already given (%s): give one speed ramp", s, f.Speed)
		}
		f.Speed = r
	case KindScale:
		if f.Scale != nil {
			return fmt.Errorf("ramp %q: a scale ramp was already given (%s): give one scale ramp", s, f.Scale)
		}
		f.Scale = r
	}
	return nil
}

// String returns the ramps given, speed first.
func (f *Flag) String() string {
	var parts []string
	if f.Speed != nil {
		parts = append(parts, f.Speed.String())
	}
	if f.Scale != nil {
		parts = append(parts, f.Scale.String())
	}
	return strings.Join(parts, " ")
}

// Type names the value in --help.
func (f *Flag) Type() string { return "stages" }

// Mode is the value of --ramp-mode: how every stage moves to the next.
type Mode string

// The ramp modes.
const (
	ModeStep   Mode = "step"   // hold each stage's value, then jump (the default)
	ModeLinear Mode = "linear" // move evenly from each stage's value to the next
)

var _ flag.Value = (*Mode)(nil)

// Set accepts "step" or "linear".
func (m *Mode) Set(s string) error {
	switch Mode(strings.ToLower(strings.TrimSpace(s))) {
	case ModeStep, "stepped", "":
		*m = ModeStep
	case ModeLinear:
		*m = ModeLinear
	default:
		return fmt.Errorf("ramp mode %q: use step or linear", s)
	}
	return nil
}

func (m *Mode) String() string {
	if *m == "" {
		return string(ModeStep)
	}
	return string(*m)
}

// Type names the value in --help.
func (m *Mode) Type() string { return "step|linear" }

// WithMode returns the ramp with every stage but the last made linear
// (ModeLinear), or r itself (ModeStep, which keeps any "~" written in the
// stages).
func (r *Ramp) WithMode(m Mode) *Ramp {
	if r == nil || m != ModeLinear {
		return r
	}
	st := r.Stages()
	for i := range st[:len(st)-1] {
		st[i].Linear = true
	}
	out, err := New(r.kind, st)
	if err != nil {
		// Stages already valid; making them linear cannot invalidate them.
		return r
	}
	return out
}
