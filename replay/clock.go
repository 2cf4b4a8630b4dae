package replay

import "time"

// sleepUntil waits until due (or up to the precise sleeper's slack,
// tens of µs, before it). It returns false, at once, when stop or done
// closes during the wait.
//
// A Go timer alone fires up to a millisecond late: an idle runtime waits
// for its next timer in epoll_wait, whose timeout is in whole
// milliseconds, rounded up below one. Measured on the 2-core test
// machine, 1,000 sleeps of 0.2-2 ms woke p50 0.57 ms and p90 1.0 ms late
// on a Go timer, p50 31 µs and p90 48 µs late on a timerfd. So the last
// stretch before due (preciseSpan, longer than that rounding) is waited
// on a precise sleeper where the system has one (on Linux one timerfd the
// netpoller watches, shared by every sleep; see clock_linux.go), and
// nothing spins: a spinning goroutine took the core the target needed
// (TestFidelityLong's p99 went from 1.25 ms to 1.6 ms at 1x and to
// 2.5-3.2 ms at 10x).
//
// It costs CPU at moderate rates, and sharing the timerfd does not buy it
// back: what costs is waking an idle runtime for each request where a
// millisecond's Go timers shared one wake-up, not the timerfd's system
// calls. TestPacedCPU (REPRISE_PACED=1 go test ./replay -run TestPacedCPU
// -v) replayed 2,000 and 20,000 requests a second at 1x against nginx,
// 4-5 s rounds alternating in one run on the loaded 2-core machine, with
// the replay's CPU per request (getrusage) and its lag p50:
//
//	                     2,000/s                20,000/s
//	Go timers only       67-96 µs, lag 0.5 ms   28-40 µs, lag 0.04-0.09 ms
//	timerfd per request  113-170 µs, 0.03 ms    29-39 µs, 0.07-0.74 ms
//	shared waker         108-155 µs, 0.04 ms    30-43 µs, 0.03-0.07 ms
//
// (lag p50; at 20,000/s the runtime is busy anyway, and the p99, tens to
// hundreds of ms in every mode, was the other helpers' load). strace -c
// counted 17 system calls per request on the first shared waker (which
// read the timerfd) and 11.5 on Go timers; the waker no longer reads it.
// TestFidelityLong, the same builds alternated: arrival p50 580-605 µs on
// Go timers, 81-88 µs with a timerfd per request, 76-96 µs shared.
func sleepUntil(due time.Time, stop, done <-chan struct{}) bool {
	if !hasPrecise {
		return sleepTimer(time.Until(due), stop, done)
	}
	if d := time.Until(due) - preciseSpan; d > 0 && !sleepTimer(d, stop, done) {
		return false
	}
	if !preciseOff {
		if ok, stopped := sleepPrecise(due, stop, done); ok {
			if stopped {
				return false
			}
			select {
			case <-stop:
				return false
			case <-done:
				return false
			default:
				return true
			}
		}
	}
	return sleepTimer(time.Until(due), stop, done)
}

// preciseSpan is the stretch before a due time waited on the precise
// sleeper: longer than a Go timer's lateness, so that the coarse wait
// before it ends in time.
const preciseSpan = 2 * time.Millisecond

// preciseOff makes sleepUntil wait on Go timers alone: the tests'
// baseline.
var preciseOff bool

func sleepTimer(d time.Duration, stop, done <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
		return true
	case <-stop:
	case <-done:
	}
	t.Stop()
	return false
}
