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
// nothing spins: a spinning
// goroutine took the core the target needed (TestFidelityLong's p99 went
// from 1.25 ms to 1.6 ms at 1x and to 2.5-3.2 ms at 10x).
//
// It costs CPU: 20,000 requests at 2,000/s against nginx on the same
// (loaded, 2-core) machine took 131-144 µs of the replay's CPU a request
// with it and 73-87 µs on Go timers alone, for a lag p50 of 0.035 ms
// against 0.5 ms. Each precise wake-up wakes the runtime alone, where a
// millisecond's timers used to share one.
func sleepUntil(due time.Time, stop, done <-chan struct{}) bool {
	if d := time.Until(due) - preciseSpan; d > 0 && !sleepTimer(d, stop, done) {
		return false
	}
	if preciseOff {
		return sleepTimer(time.Until(due), stop, done)
	}
	if ok, stopped := sleepPrecise(due, stop, done); stopped {
		return false
	} else if !ok {
		return sleepTimer(time.Until(due), stop, done)
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
