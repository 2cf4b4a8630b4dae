//go:build !windows

package guard

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestStopperSIGINT sends real SIGINTs to the test process.
func TestStopperSIGINT(t *testing.T) {
	s := NewStopper(context.Background(), time.Hour)
	defer s.Close()
	s.NotifySignals()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s.Issue(), "issue")
	if !errors.Is(s.Cause(), ErrInterrupted) {
		t.Errorf("cause %v", s.Cause())
	}
	notDone(t, s.InFlight(), "in-flight")
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s.InFlight(), "in-flight")
	if !errors.Is(s.Killed(), ErrInterruptedTwice) {
		t.Errorf("killed by %v", s.Killed())
	}
}
