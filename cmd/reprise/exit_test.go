package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/guard"
)

// exitCode is the one place errors become exit codes; the libraries return
// typed errors and know nothing of the codes.
func TestExitCode(t *testing.T) {
	abort := &guard.AbortError{Trip: guard.Trip{RuleText: "p99>2s"}}
	intr := &replay.InterruptedError{Cause: context.Canceled}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"plain failure", errors.New("read rec.zst: unexpected EOF"), exitFailure},
		{"usage", usagef(errors.New("--speed must be 1..10")), exitUsage},
		{"cobra unknown flag", errors.New("unknown flag: --sped"), exitUsage},
		{"guard abort", abort, exitGuard},
		{"wrapped guard abort", fmt.Errorf("replay: %w", abort), exitGuard},
		{"interrupted", intr, exitSignal},
		{"wrapped interrupted", fmt.Errorf("replay: %w", intr), exitSignal},
		{"check verdict", verdictError{}, exitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
