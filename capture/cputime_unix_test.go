//go:build unix

package capture

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used, so
// benchmarks can report throughput per CPU second, which a busy shared
// machine does not distort as it does wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
