//go:build unix

package corrplan

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used (user and system), which
// other processes' load on a shared machine does not inflate as it does
// the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
