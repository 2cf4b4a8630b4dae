package replay

import "time"

// sleepUntil waits until due on a timer. It returns false, at once, when
// stop or done closes during the wait.
//
// It does not yield (spin) through the last stretch before due, though an
// idle Go runtime may fire a timer up to a millisecond late: measured with
// TestFidelityLong (20 000 requests against the shop on the same 2-core
// machine), a spinning goroutine took the core the target needed and the
// p99 of arrival against due time went from 1.25 ms to 1.6 ms at 1x and
// from 1.4 ms to 2.5-3.2 ms at 10x (5 ms with one spinner per core), for
// a p50 gain of 0.15 ms. A chain of back-to-back requests does not wait on
// a timer at all (TestNginxChainLatency is the same either way).
func sleepUntil(due time.Time, stop, done <-chan struct{}) bool {
	return sleepTimer(time.Until(due), stop, done)
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
