package replay

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sleeper is a timerfd (CLOCK_MONOTONIC, non-blocking) read through the
// netpoller: epoll returns when it expires, to the microsecond, while a
// Go timer waits on epoll_wait's millisecond timeout.
type sleeper struct{ f *os.File }

// sleepers keeps idle timerfds for reuse: one sleep costs a settime and
// a read, not an open and a close. Past its capacity they are closed.
var sleepers = make(chan *sleeper, 64)

func getSleeper() *sleeper {
	select {
	case s := <-sleepers:
		return s
	default:
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	return &sleeper{os.NewFile(uintptr(fd), "timerfd")}
}

func putSleeper(s *sleeper) {
	select {
	case sleepers <- s:
	default:
		s.f.Close()
	}
}

// sleepPrecise waits until due on a timerfd; false when it cannot (the
// caller then waits on a Go timer).
func sleepPrecise(due time.Time) bool {
	d := time.Until(due)
	if d <= 0 {
		return true
	}
	s := getSleeper()
	if s == nil {
		return false
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		s.f.Close()
		return false
	}
	its := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.TimerfdSettime(int(fd), 0, &its, nil) }); err != nil || serr != nil {
		s.f.Close()
		return false
	}
	var b [8]byte // the expirations count, read to rearm it
	if _, err := s.f.Read(b[:]); err != nil {
		s.f.Close()
		return false
	}
	putSleeper(s)
	return true
}
