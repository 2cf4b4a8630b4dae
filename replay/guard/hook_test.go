package guard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func sampleTrip() Trip {
	r := Rule{Metric: ErrorRate, Op: Greater, Threshold: 0.05}
	return Trip{Rule: r, RuleText: r.String(), Value: 0.345, Threshold: 0.05, At: t0.Add(3 * time.Second), Window: 10 * time.Second, Requests: 812}
}

func TestHook(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the commands below are POSIX shell")
	}
	dir := t.TempDir()
	tests := []struct {
		name    string
		cmd     string
		timeout time.Duration
		out     string // expected stdout
		err     string // part of the error, "" for none
	}{
		// The trip reaches the command's environment; output passes through.
		{"env", `echo "$REPRISE_ABORT_RULE|$REPRISE_ABORT_VALUE|$REPRISE_ABORT_THRESHOLD|$REPRISE_REPORT|$REPRISE_ABORT_AT"`, 0,
			"error_rate>5%|34.5%|5%|" + filepath.Join(dir, "run.json") + "|2026-11-26T12:00:03Z\n", ""},
		// The reason is one sentence.
		{"reason", `printf %s "$REPRISE_ABORT_REASON"`, 0,
			"error_rate was 34.5% (limit >5%) over the last 10s (812 requests) at 12:00:03Z", ""},
		// A failing command reports its code.
		{"exit code", "exit 7", 0, "", "exited with code 7"},
		// A hanging command (and its child) is killed at the timeout.
		{"timeout", "sleep 30; echo never", 200 * time.Millisecond, "", "killed after its timeout"},
		// No command: nothing to do.
		{"empty", "", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			h := &Hook{Command: tt.cmd, Timeout: tt.timeout, Stdout: &out, Stderr: &errOut}
			start := time.Now()
			err := h.Run(context.Background(), sampleTrip(), filepath.Join(dir, "run.json"))
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if tt.err == "" && err != nil {
				t.Fatalf("%v (stderr %q)", err, errOut.String())
			}
			if tt.err != "" {
				var he *HookError
				if !errors.As(err, &he) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
			}
			if out.String() != tt.out {
				t.Errorf("stdout %q, want %q", out.String(), tt.out)
			}
		})
	}
}

// TestHookOnce: the rollback runs once however often Run is called.
func TestHookOnce(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX shell")
	}
	f := filepath.Join(t.TempDir(), "count")
	h := &Hook{Command: "echo x >> " + f, Stdout: new(strings.Builder)}
	for i := 0; i < 3; i++ {
		if err := h.Run(context.Background(), sampleTrip(), ""); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(f)
	if err != nil || string(b) != "x\n" {
		t.Errorf("ran %q, %v", b, err)
	}
}
