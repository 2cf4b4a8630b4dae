//go:build unix

package session

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time this process has used (user and system).
// Benchmarks divide by it to report throughput per CPU-second, which a busy
// machine does not distort the way it distorts wall-clock MB/s.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
