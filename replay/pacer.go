package replay

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Pacer decides when each request is due. Due maps a request's offset in
// the recording (its start minus the recording's origin) to its due time,
// measured from the replay's start on one absolute clock. Because every due
// time is computed from the start, and never from the previous request,
// a late request does not push later ones back: drift cannot accumulate.
//
// A Pacer is consulted from one goroutine, in order of offset, and must be
// monotonic. Speed changes over time are Pacers too: a ramp (package
// replay/ramp) solves the integral of the speed for the due time, and
// satisfies this interface as it is.
type Pacer interface {
	// Due returns the wall time since the replay's start at which a
	// request recorded at offset (since the recording's start) is due.
	Due(offset time.Duration) time.Duration
}

// Speed compresses time by a constant factor: a request at offset o is due
// at o/Speed. Speed(2) replays twice as fast as recorded.
type Speed float64

var _ Pacer = Speed(1)

// Due implements Pacer.
func (s Speed) Due(offset time.Duration) time.Duration {
	return time.Duration(math.Round(float64(offset) / float64(s)))
}

func (s Speed) String() string { return strconv.FormatFloat(float64(s), 'g', -1, 64) }

// Max sends every request as soon as its session's order and the caps
// allow, ignoring the recording's timing.
type Max struct{}

var _ Pacer = Max{}

// Due implements Pacer: everything is due at once.
func (Max) Due(time.Duration) time.Duration { return 0 }

func (Max) String() string { return "max" }

// Speed limits, inclusive.
const (
	MinSpeed float64 = 0.1
	MaxSpeed float64 = 100
)

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

// isMax reports whether p ignores the recording's timing.
func isMax(p Pacer) bool {
	_, ok := p.(Max)
	return ok
}
