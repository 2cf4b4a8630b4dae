//go:build !unix

package session

import "time"

// cpuTime is not measured on this platform; the metric is then omitted.
func cpuTime() time.Duration { return 0 }
