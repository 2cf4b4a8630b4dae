package replay

import (
	"container/heap"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// waker is the one precise sleeper of the process: a goroutine reading a
// timerfd (CLOCK_MONOTONIC, absolute, non-blocking) through the
// netpoller, which returns when it expires, to the microsecond, where a
// Go timer waits on epoll_wait's millisecond timeout. The timerfd is
// armed for the earliest waiter; each expiry wakes every waiter due
// within wakeSlack and re-arms it for the next. One wake-up and one
// settime serve every request due in the same few microseconds, where a
// timerfd per request paid a settime, a read and a wake-up each.
type waker struct {
	mu    sync.Mutex // guards q and armed
	q     waitHeap
	armed int64 // the monotonic due time the timerfd is armed for; 0 when none, -1 when stopped
	f     *os.File
	fd    int
	base  time.Time // a time whose CLOCK_MONOTONIC reading is mono
	mono  int64
}

// hasPrecise says that sleepUntil may wait the last stretch on the
// waker.
const hasPrecise = true

// wakeSlack is how early a waiter may be woken with an earlier one:
// within a timerfd's own lateness (tens of µs) and well under a
// request's scheduling error target.
const wakeSlack = 30 * time.Microsecond

// waiter is one sleep on the waker; they are pooled, with their channel.
type waiter struct {
	due int64         // monotonic nanoseconds
	at  int           // heap index; -1 when not queued
	ch  chan struct{} // signalled (buffered) when due
}

var waiters = sync.Pool{New: func() any { return &waiter{at: -1, ch: make(chan struct{}, 1)} }}

var (
	theWaker     *waker
	theWakerOnce sync.Once
)

// getWaker starts the waker on first use; nil when the system refuses a
// timerfd (the caller then waits on a Go timer).
func getWaker() *waker {
	theWakerOnce.Do(func() {
		fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
		if err != nil {
			return
		}
		var ts unix.Timespec
		if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
			unix.Close(fd)
			return
		}
		w := &waker{f: os.NewFile(uintptr(fd), "timerfd"), fd: fd, base: time.Now(), mono: ts.Nano()}
		go w.run()
		theWaker = w
	})
	return theWaker
}

// monoOf is due on CLOCK_MONOTONIC, the clock Go's monotonic readings
// come from.
func (w *waker) monoOf(due time.Time) int64 { return w.mono + int64(due.Sub(w.base)) }

// run waits for the timerfd's expirations for ever and wakes the due.
// Each wait reads the timerfd, non-blocking: an expiry since the last
// read (or since the last settime) reads as a count, none as EAGAIN, and
// only then does it park on the netpoller. The expirations count is the
// kernel's own record, so no expiry is lost however the readiness edges
// and the wait's start interleave. (Reading the clock instead, to save the
// read, lost one now and then: an expiry whose edge came just before the
// wait began, by less than the offset between Go's clock and the
// kernel's, left the waker parked for ever and every sleeper after it.)
func (w *waker) run() {
	rc, err := w.f.SyscallConn()
	var buf [8]byte
	var rerr error
	wait := func(fd uintptr) bool {
		for {
			_, e := unix.Read(int(fd), buf[:])
			switch e {
			case nil:
				return true // expired
			case unix.EAGAIN:
				return false // park until the netpoller says it is readable
			case unix.EINTR:
				continue
			}
			rerr = e
			return true
		}
	}
	for err == nil {
		if err = rc.Read(wait); err == nil {
			err = rerr
		}
		if err != nil {
			break
		}
		now := w.monoOf(time.Now()) + int64(wakeSlack)
		w.mu.Lock()
		for len(w.q) > 0 && w.q[0].due <= now {
			w.fire(heap.Pop(&w.q).(*waiter))
		}
		w.armed = 0
		if len(w.q) > 0 {
			w.arm(w.q[0].due)
		}
		w.mu.Unlock()
	}
	// The timerfd is broken (it never is): wake everyone and stop;
	// sleeps then fall back to Go timers.
	w.mu.Lock()
	for len(w.q) > 0 {
		w.fire(heap.Pop(&w.q).(*waiter))
	}
	w.armed = -1
	w.mu.Unlock()
}

func (w *waker) fire(wt *waiter) {
	wt.at = -1
	wt.ch <- struct{}{}
}

// arm sets the timerfd for due, with w.mu held.
func (w *waker) arm(due int64) bool {
	its := unix.ItimerSpec{Value: unix.NsecToTimespec(due)}
	if unix.TimerfdSettime(w.fd, unix.TFD_TIMER_ABSTIME, &its, nil) != nil {
		return false
	}
	w.armed = due
	return true
}

// sleepPrecise waits until due on the waker. It returns ok false when it
// cannot (the caller then waits on a Go timer), and stopped true when
// stop or done closed first.
func sleepPrecise(due time.Time, stop, done <-chan struct{}) (ok, stopped bool) {
	w := getWaker()
	if w == nil {
		return false, false
	}
	wt := waiters.Get().(*waiter)
	wt.due = w.monoOf(due)
	w.mu.Lock()
	armed := w.armed
	if armed < 0 { // the waker stopped
		w.mu.Unlock()
		waiters.Put(wt)
		return false, false
	}
	heap.Push(&w.q, wt)
	if w.q[0] == wt && (armed == 0 || wt.due < armed) && !w.arm(wt.due) {
		heap.Remove(&w.q, wt.at)
		wt.at = -1
		w.mu.Unlock()
		waiters.Put(wt)
		return false, false
	}
	w.mu.Unlock()
	select {
	case <-wt.ch:
	case <-stop:
		stopped = true
	case <-done:
		stopped = true
	}
	if stopped {
		w.mu.Lock()
		if wt.at >= 0 {
			heap.Remove(&w.q, wt.at)
			wt.at = -1
		} else {
			select { // fired meanwhile: the signal was sent under w.mu
			case <-wt.ch:
			default:
			}
		}
		w.mu.Unlock()
	}
	waiters.Put(wt)
	return true, stopped
}

// waitHeap orders waiters by due time (container/heap).
type waitHeap []*waiter

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = i, j
}
func (h *waitHeap) Push(x any) {
	wt := x.(*waiter)
	wt.at = len(*h)
	*h = append(*h, wt)
}
func (h *waitHeap) Pop() any {
	old := *h
	wt := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return wt
}

func slackFor() time.Duration { return wakeSlack }
