package guard

import (
	"context"
	"os"
	"sync"
	"time"
)

// DefaultDrain is --drain-timeout's default.
const DefaultDrain = 10 * time.Second

// Stopper carries the orderly stop of a replay. It holds two contexts:
// Issue ends when no new request may be sent (a guard tripped, an
// interrupt, the parent context ended), and InFlight ends when requests
// already sent must be abandoned (the drain timeout passed, Kill). Stop
// ends Issue at once and InFlight drain later; the engine waits for its
// in-flight requests, then calls Close. It registers no signal: the
// program that owns the process does (see Watch).
//
// The parent context ending is taken as an orderly stop, not a kill; a
// caller whose context's end must abort (the replay engine) gives it a
// parent that does not end and calls Kill itself.
type Stopper struct {
	issue      context.Context
	stopIssue  context.CancelCauseFunc
	flight     context.Context
	stopFlight context.CancelCauseFunc
	drain      time.Duration

	stopOnce, killOnce, closeOnce sync.Once
	mu                            sync.Mutex
	timer                         *time.Timer
	stopped                       time.Time
	done                          chan struct{}
}

// NewStopper returns a stopper whose drain lasts drain (0 means abandon
// in-flight requests as soon as issuing stops).
func NewStopper(parent context.Context, drain time.Duration) *Stopper {
	s := &Stopper{drain: drain, done: make(chan struct{})}
	s.issue, s.stopIssue = context.WithCancelCause(context.Background())
	s.flight, s.stopFlight = context.WithCancelCause(context.WithoutCancel(parent))
	go func() {
		select {
		case <-parent.Done():
			cause := context.Cause(parent)
			if cause == context.Canceled {
				cause = ErrInterrupted
			}
			s.Stop(cause)
		case <-s.done:
		}
	}()
	return s
}

// Issue is done when no new request may be sent.
func (s *Stopper) Issue() context.Context { return s.issue }

// InFlight is done when requests already sent must be abandoned; give it
// to each request.
func (s *Stopper) InFlight() context.Context { return s.flight }

// Stop stops issuing with cause and starts the drain. Only the first call
// counts.
func (s *Stopper) Stop(cause error) {
	s.stopOnce.Do(func() {
		s.stopIssue(cause)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stopped = time.Now()
		if s.drain > 0 {
			s.timer = time.AfterFunc(s.drain, func() { s.kill(ErrDrainTimeout) })
		}
	})
	if s.drain <= 0 {
		s.kill(ErrDrainTimeout)
	}
}

// Kill stops issuing and abandons the requests in flight at once.
func (s *Stopper) Kill(cause error) {
	s.stopOnce.Do(func() {
		s.stopIssue(cause)
		s.mu.Lock()
		s.stopped = time.Now()
		s.mu.Unlock()
	})
	s.kill(cause)
}

func (s *Stopper) kill(cause error) { s.killOnce.Do(func() { s.stopFlight(cause) }) }

// Cause returns why issuing stopped, or nil while it goes on.
func (s *Stopper) Cause() error { return context.Cause(s.issue) }

// Killed returns why in-flight requests were abandoned, or nil.
func (s *Stopper) Killed() error { return context.Cause(s.flight) }

// StoppedAt returns when Stop was first called (zero while running).
func (s *Stopper) StoppedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Watch stops on the first value from sigs and kills on the second. It
// returns at once; the watching ends with Close. The library registers
// no signal: a program that wants them passes a channel it gave to
// signal.Notify.
func (s *Stopper) Watch(sigs <-chan os.Signal) {
	go func() {
		n := 0
		for {
			select {
			case <-sigs:
				n++
				if n == 1 {
					s.Stop(ErrInterrupted)
				} else {
					s.Kill(ErrInterruptedTwice)
					return
				}
			case <-s.done:
				return
			}
		}
	}()
}

// Close ends the run: it releases the timer and the goroutines, and ends
// both contexts with ErrFinished if they are
// still open. Call it once every request has finished.
func (s *Stopper) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		if s.timer != nil {
			s.timer.Stop()
		}
		s.mu.Unlock()
		s.stopIssue(ErrFinished)
		s.stopFlight(ErrFinished)
	})
}
