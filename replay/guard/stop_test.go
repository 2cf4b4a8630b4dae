package guard

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// waitDone fails the test if ctx is not done within a generous bound.
func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not done", what)
	}
}

func notDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if ctx.Err() != nil {
		t.Fatalf("%s done too early: %v", what, context.Cause(ctx))
	}
}

func TestStopperDrain(t *testing.T) {
	tests := []struct {
		name  string
		drain time.Duration
		act   func(s *Stopper)
		issue error // cause on Issue
		kill  error // cause on InFlight after the drain
	}{
		// A trip stops issuing; in-flight requests get the drain, then are abandoned.
		{"stop then drain", 30 * time.Millisecond, func(s *Stopper) { s.Stop(errors.New("tripped")) }, nil, ErrDrainTimeout},
		// Kill abandons everything at once.
		{"kill", time.Hour, func(s *Stopper) { s.Kill(ErrInterruptedTwice) }, ErrInterruptedTwice, ErrInterruptedTwice},
		// A zero drain abandons at once too.
		{"no drain", 0, func(s *Stopper) { s.Stop(ErrInterrupted) }, ErrInterrupted, ErrDrainTimeout},
		// Stop is idempotent: the first cause wins.
		{"first cause", 20 * time.Millisecond, func(s *Stopper) { s.Stop(ErrInterrupted); s.Stop(errors.New("second")) }, ErrInterrupted, ErrDrainTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStopper(context.Background(), tt.drain)
			defer s.Close()
			notDone(t, s.Issue(), "issue")
			tt.act(s)
			waitDone(t, s.Issue(), "issue")
			if tt.issue != nil && !errors.Is(s.Cause(), tt.issue) {
				t.Errorf("cause %v, want %v", s.Cause(), tt.issue)
			}
			waitDone(t, s.InFlight(), "in-flight")
			if !errors.Is(s.Killed(), tt.kill) {
				t.Errorf("killed by %v, want %v", s.Killed(), tt.kill)
			}
		})
	}
}

// TestStopperDrainsInTime: when in-flight work ends within the drain, Close
// ends the run without abandoning anything.
func TestStopperDrainsInTime(t *testing.T) {
	s := NewStopper(context.Background(), time.Hour)
	s.Stop(errors.New("tripped"))
	notDone(t, s.InFlight(), "in-flight")
	s.Close()
	if !errors.Is(s.Killed(), ErrFinished) {
		t.Errorf("closed with %v", s.Killed())
	}
}

// TestStopperParent: the CLI's root context ends on the first SIGINT; that
// stops issuing but lets in-flight requests drain.
func TestStopperParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	s := NewStopper(parent, time.Hour)
	defer s.Close()
	cancel()
	waitDone(t, s.Issue(), "issue")
	if !errors.Is(s.Cause(), ErrInterrupted) {
		t.Errorf("cause %v", s.Cause())
	}
	notDone(t, s.InFlight(), "in-flight")
}

// TestStopperChannel feeds signals through a channel: the first stops in
// order, the second at once.
func TestStopperChannel(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	s := NewStopper(context.Background(), time.Hour)
	defer s.Close()
	s.Watch(sigs)
	sigs <- os.Interrupt
	waitDone(t, s.Issue(), "issue")
	notDone(t, s.InFlight(), "in-flight")
	sigs <- os.Interrupt
	waitDone(t, s.InFlight(), "in-flight")
	if !errors.Is(s.Killed(), ErrInterruptedTwice) {
		t.Errorf("killed by %v", s.Killed())
	}
}
