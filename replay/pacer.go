package replay

import "github.com/reprise-tool/reprise/replay/schedule"

// Pacer decides when each request is due; see schedule.Pacer, the one
// interface a constant speed, Max and a ramp of speeds (*ramp.Ramp) meet.
type Pacer = schedule.Pacer

// Speed compresses time by a constant factor: a request at offset o is due
// at o/Speed. Speed(2) replays twice as fast as recorded.
type Speed = schedule.Speed

// Max sends every request as soon as its session's order and the caps
// allow, ignoring the recording's timing.
type Max = schedule.Max

// Speed limits, inclusive.
const (
	MinSpeed = schedule.MinSpeed
	MaxSpeed = schedule.MaxSpeed
)

// ParseSpeed reads a --speed value: a number from 0.1 to 100, optionally
// followed by "x" ("2", "2.5x", "0.5"), or "max".
func ParseSpeed(s string) (Pacer, error) { return schedule.ParseSpeed(s) }

// isMax reports whether p ignores the recording's timing.
func isMax(p Pacer) bool { return schedule.IsMax(p) }
