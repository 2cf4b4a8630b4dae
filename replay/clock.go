package replay

import (
	"runtime"
	"sync/atomic"
	"time"
)

// spinFor is the last stretch before a due time that a request's
// goroutine waits for by yielding rather than on a timer. An idle Go
// runtime on Linux rounds a timer's wait up to the next millisecond (the
// poller waits in whole milliseconds, golang/go#44343): a request due
// 30 µs after its predecessor's response slept a millisecond, on a chain
// of requests and on the first requests of a run alike. Yielding keeps
// the processor busy, so the timers of the other waiting goroutines are
// checked at every turn of the scheduler as well.
const spinFor = 1200 * time.Microsecond

// spinners counts the goroutines yielding until their due time. One is
// enough: while it yields, its processor runs the scheduler, which fires
// every other waiter's timer on time. More would only burn cores that a
// target on the same machine (a demo, a test, a staging box shared with
// the replayer) needs; the rest take a timer.
var spinners atomic.Int32

// maxSpinners bounds spinners.
const maxSpinners = 1

// sleepUntil waits until due. It returns false, at once, when stop or done
// closes during the timer's part of the wait.
func sleepUntil(due time.Time, stop, done <-chan struct{}) bool {
	if wait := time.Until(due) - spinFor; wait > 0 {
		if !sleepTimer(wait, stop, done) {
			return false
		}
	}
	if time.Until(due) <= 0 {
		return true
	}
	if spinners.Add(1) > maxSpinners {
		spinners.Add(-1)
		return sleepTimer(time.Until(due), stop, done)
	}
	for time.Now().Before(due) {
		runtime.Gosched()
	}
	spinners.Add(-1)
	return true
}

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
