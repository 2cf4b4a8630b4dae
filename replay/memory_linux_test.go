//go:build linux

package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMemoryPeakRSS replays a dense recording three times the look-ahead
// window's time long (30,000 requests a second, 5 KB bodies: 450,000
// exchanges, 220 times the window's bound in exchanges and 1,100 times
// its bytes; REPRISE_LONG=1 makes it 45 seconds) with the replay command,
// at --speed max and at 1x, and asserts the target: a peak RSS
// within 64 MiB. The command runs as a child process and its peak is its
// VmHWM (runChild), all of it: the survey's pass, the binary's code, the
// runtime, the connections. The recording has no session rules, so the
// sessions are recomputed, through the identity tracker's reorder buffer.
func TestMemoryPeakRSS(t *testing.T) {
	switch {
	case testing.Short():
		t.Skip("replays 450,000 requests, 15 seconds of them at 1x")
	case raceEnabled:
		t.Skip("the race detector's shadow memory is no measure of the replay's")
	}
	const rate, limitMiB = 30_000, 64
	secs := 15
	if os.Getenv("REPRISE_LONG") != "" {
		secs = 45
	}
	n := secs * rate
	t0w := time.Now()
	path := writeDenseRecording(t, n)
	bin := filepath.Join(t.TempDir(), "reprise")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/reprise-tool/reprise/cmd/reprise").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("recording of %d exchanges written and the command built in %v", n, time.Since(t0w).Round(time.Millisecond))
	target := startTrivial(t)
	for _, speed := range []string{"max", "1x"} {
		t.Run(speed, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "replay", path, "--target", target, "--speed", speed,
				"--max-inflight", "64", "--allow-original-host", "--json", "--progress", "0",
				// A shared machine can leave the 1x run behind its
				// schedule, which is no reason to stop it: lag is not
				// what this measures, and a replay behind holds more.
				"--abort-on", "error_rate>50%")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			rss, err := runChild(cmd)
			if err != nil {
				t.Fatalf("replay: %v\n%s", err, stderr.String())
			}
			var rep Report
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("replay's report: %v\n%s", err, stderr.String())
			}
			var mem MemoryReport
			if rep.Plan != nil {
				mem = rep.Plan.Memory
			}
			t.Logf("%d responses in %.0fms, lag p99 %.1fms; peak RSS %.1f MiB; window held at most %d exchanges, %.1f MiB, released early: %d by exchanges, %d by bytes; %d bodies dropped",
				rep.Requests.Responses, rep.DurationMS, rep.Lag.P99, rss, mem.PeakExchanges, float64(mem.PeakBytes)/(1<<20), mem.ByExchanges, mem.ByBytes, mem.BodiesDropped)
			if rep.Requests.Responses != uint64(n) || !rep.Completed {
				t.Errorf("replayed %+v, want %d responses: %s", rep.Requests, n, rep.Failure)
			}
			if rss > limitMiB {
				t.Errorf("peak RSS %.1f MiB, over the %d MiB target", rss, limitMiB)
			}
		})
	}
}
