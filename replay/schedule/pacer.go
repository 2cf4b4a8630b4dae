package schedule

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Pacer decides when each request is due: the one interface through which
// a constant speed (Speed), --speed max (Max) and a ramp of speeds
// (*ramp.Ramp) reach the engine and the planner. Due maps a request's
// offset in the recording (its start minus the recording's origin) to its
// due time, measured from the replay's start on one absolute clock.
// Because every due time is computed from the start, and never from the
// previous request, a late request does not push later ones back: drift
// cannot accumulate.
//
// A rate cap is not a Pacer: a Pacer is arithmetic of the recording's
// offsets, a cap a budget shared at run time. The engine applies the cap
// after the Pacer (replay.WithRate), and its wait shows as lag.
//
// A Pacer is consulted in order of offset and must be monotonic; it must
// be safe for concurrent use.
type Pacer interface {
	// Due returns the wall time since the replay's start at which a
	// request recorded at offset (since the recording's start) is due.
	Due(offset time.Duration) time.Duration
	// Speed returns the speed multiplier in force at wall time elapsed
	// since the replay's start; 0 when the recording's timing is
	// ignored (Max).
	Speed(elapsed time.Duration) float64
}

var (
	_ Pacer = Speed(1)
	_ Pacer = Max{}
)

// Speed limits, inclusive, for a constant speed and a ramp's stages.
const (
	MinSpeed float64 = 0.1
	MaxSpeed float64 = 100
)

// Speed compresses time by a constant factor: a request at offset o is due
// at o/Speed. Speed(2) replays twice as fast as recorded.
type Speed float64

// Due implements Pacer.
func (s Speed) Due(offset time.Duration) time.Duration {
	return time.Duration(math.Round(float64(offset) / float64(s)))
}

// Offset is the inverse of Due: the recording offset reached after wall
// time elapsed.
func (s Speed) Offset(elapsed time.Duration) time.Duration {
	return time.Duration(math.Round(float64(elapsed) * float64(s)))
}

// Speed implements Pacer: s, at every moment.
func (s Speed) Speed(time.Duration) float64 { return float64(s) }

func (s Speed) String() string { return strconv.FormatFloat(float64(s), 'g', -1, 64) }

// Max sends every request as soon as its session's order and the caps
// allow, ignoring the recording's timing.
type Max struct{}

// Due implements Pacer: everything is due at once.
func (Max) Due(time.Duration) time.Duration { return 0 }

// Speed implements Pacer: 0, no speed.
func (Max) Speed(time.Duration) float64 { return 0 }

func (Max) String() string { return "max" }

// IsMax reports whether p ignores the recording's timing.
func IsMax(p Pacer) bool {
	_, ok := p.(Max)
	return ok
}

// ParseSpeed reads a --speed value: a number from 0.1 to 100, optionally
// followed by "x" ("2", "2.5x", "0.5"), or "max".
func ParseSpeed(s string) (Pacer, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	if t == "max" {
		return Max{}, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(t, "x"), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("speed %q: want a number from %g to %g (e.g. 2 or 2x) or max", s, MinSpeed, MaxSpeed)
	}
	if f < MinSpeed || f > MaxSpeed {
		return nil, fmt.Errorf("speed %g out of range: want %g to %g, or max", f, MinSpeed, MaxSpeed)
	}
	return Speed(f), nil
}
