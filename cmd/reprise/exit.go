package main

import (
	"errors"
	"strings"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/guard"
)

// Exit codes. Scripts may rely on them; they are documented in README.md.
const (
	exitOK      = 0   // the job completed
	exitFailure = 1   // the job failed or found damage (e.g. a corrupt recording)
	exitUsage   = 2   // the command line was wrong
	exitGuard   = 3   // a replay was stopped by a guard (the rollback ran)
	exitSignal  = 130 // 128+SIGINT: a replay interrupted by Ctrl-C, after its orderly stop
)

// usageError marks a command-line mistake.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error; its message should name the fix.
func usagef(err error) error { return usageError{err} }

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	// cobra reports argument mistakes as plain errors; they are usage errors.
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "invalid argument"} {
		if strings.HasPrefix(err.Error(), p) {
			return exitUsage
		}
	}
	var abort *guard.AbortError
	if errors.As(err, &abort) {
		return exitGuard
	}
	var intr *replay.InterruptedError
	if errors.As(err, &intr) {
		return exitSignal
	}
	return exitFailure
}
