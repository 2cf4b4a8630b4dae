package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"
)

// DefaultHookTimeout bounds the --on-abort command unless set otherwise.
const DefaultHookTimeout = 60 * time.Second

// Hook is the --on-abort command: the user's rollback (scale down, page
// someone). It runs at most once, through the shell (sh -c on Unix,
// cmd /C on Windows), with the trip in its environment:
//
//	REPRISE_ABORT_REASON     the sentence Trip.Reason gives
//	REPRISE_ABORT_RULE       the rule, e.g. p99>2s
//	REPRISE_ABORT_VALUE      the measured value as written, e.g. 2.31s or 34.5%
//	REPRISE_ABORT_THRESHOLD  the rule's threshold as written
//	REPRISE_ABORT_AT         when it tripped, RFC 3339
//	REPRISE_REPORT           the path of the run's report ("" when none)
//
// Its output goes to Stdout and Stderr as it comes. It is killed (with its
// children, on Unix) when Timeout passes or ctx ends.
type Hook struct {
	Command string
	Timeout time.Duration // 0 means DefaultHookTimeout
	Stdout  io.Writer     // nil means os.Stdout
	Stderr  io.Writer     // nil means os.Stderr

	once sync.Once
	err  error
}

// HookError says how the on-abort command failed.
type HookError struct {
	Command  string
	ExitCode int  // -1 when it did not exit by itself
	TimedOut bool // killed at the timeout
	Err      error
}

func (e *HookError) Error() string {
	if e.TimedOut {
		return fmt.Sprintf("on-abort command %q was killed after its timeout: make it faster or raise the timeout", e.Command)
	}
	if e.ExitCode > 0 {
		return fmt.Sprintf("on-abort command %q exited with code %d", e.Command, e.ExitCode)
	}
	return fmt.Sprintf("on-abort command %q failed: %v", e.Command, e.Err)
}

func (e *HookError) Unwrap() error { return e.Err }

// Env returns the variables the command gets for trip and report.
func Env(t Trip, report string) []string {
	return []string{
		"REPRISE_ABORT_REASON=" + t.Reason(),
		"REPRISE_ABORT_RULE=" + t.RuleText,
		"REPRISE_ABORT_VALUE=" + t.ValueText(),
		"REPRISE_ABORT_THRESHOLD=" + t.Rule.format(t.Threshold),
		"REPRISE_ABORT_AT=" + t.At.UTC().Format(time.RFC3339Nano),
		"REPRISE_REPORT=" + report,
	}
}

// Run runs the command once for trip; later calls return the first
// result without running it again. An empty Command does nothing.
func (h *Hook) Run(ctx context.Context, t Trip, report string) error {
	h.once.Do(func() { h.err = h.run(ctx, t, report) })
	return h.err
}

func (h *Hook) run(ctx context.Context, t Trip, report string) error {
	if h.Command == "" {
		return nil
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, "cmd", "/C", h.Command)
	} else {
		cmd = exec.CommandContext(ctx, "sh", "-c", h.Command)
	}
	cmd.Env = append(os.Environ(), Env(t, report)...)
	cmd.Stdout, cmd.Stderr = h.Stdout, h.Stderr
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	killGroup(cmd)
	// If a child keeps the output open after the kill, stop waiting.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	he := &HookError{Command: h.Command, ExitCode: -1, Err: err}
	if ctx.Err() != nil {
		he.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		return he
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		he.ExitCode = ee.ExitCode()
	}
	return he
}
