//go:build !linux

package replay

import "time"

// sleepPrecise has no precise sleeper here: the caller waits on a Go
// timer.
func sleepPrecise(time.Time, <-chan struct{}, <-chan struct{}) (ok, stopped bool) {
	return false, false
}

func slackFor() time.Duration { return 0 }
