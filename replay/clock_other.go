//go:build !linux

package replay

import "time"

// hasPrecise is false: there is no precise sleeper here, and sleepUntil
// waits on one Go timer for the whole of the sleep.
const hasPrecise = false

// sleepPrecise has no precise sleeper here: the caller waits on a Go
// timer.
func sleepPrecise(time.Time, <-chan struct{}, <-chan struct{}) (ok, stopped bool) {
	return false, false
}

func slackFor() time.Duration { return 0 }
