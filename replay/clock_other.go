//go:build !linux

package replay

import "time"

// sleepPrecise has no precise sleeper here: the caller waits on a Go
// timer.
func sleepPrecise(time.Time) bool { return false }
