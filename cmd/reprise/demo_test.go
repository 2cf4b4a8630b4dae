package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/demo"
)

// TestDemoEndToEnd runs 'reprise demo --short --json' as a user would and
// holds the whole chain to the shop's own counters: the recording holds
// every request the shop served, the fresh shop counts no violation at any
// stage of the ramp, and the realism check passes.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("records and replays the shop for about 10 s")
	}
	dir := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--short", "--json", "--dir", dir}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	var res demo.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout.String())
	}
	c := res.Capture
	t.Logf("capture by %s: users sent %d, shop served %d, recorded %d (%d complete), sessions %d of %d",
		c.Method, c.Sent, c.Served, c.Recorded, c.Complete, c.Sessions, c.UserSessions)
	if c.Served == 0 || int64(c.Complete) != c.Served || c.Recorded != c.Complete || !c.Match {
		t.Errorf("capture: %d exchanges recorded (%d complete), the shop served %d", c.Recorded, c.Complete, c.Served)
	}
	if c.Stop != "done" {
		t.Errorf("the users stopped by %q, want done (every plan finished inside the bound)", c.Stop)
	}
	if c.Sessions != uint64(c.UserSessions) {
		t.Errorf("sessions found %d, simulator's %d", c.Sessions, c.UserSessions)
	}

	r := res.Replay
	if len(r.Stages) != 3 {
		t.Fatalf("%d stages, want 1x, 5x, 10x: %+v", len(r.Stages), r.Stages)
	}
	var sent int
	for i, want := range []float64{1, 5, 10} {
		s := r.Stages[i]
		t.Logf("stage %s: sent %d, shop served %d, p99 %.1fms, lag p99 %.1fms, violations %+v", s.Name, s.Sent, s.Served, s.P99MS, s.LagP99MS, s.Violations)
		if s.Speed != want {
			t.Errorf("stage %d at %vx, want %vx", i, s.Speed, want)
		}
		if s.Violations.Total() != 0 {
			t.Errorf("stage %s: violations %+v, want none", s.Name, s.Violations)
		}
		sent += s.Sent
	}
	if r.Violations.Total() != 0 || !r.Completed || r.Errors != 0 {
		t.Errorf("replay: completed %v, %d errors, violations %+v", r.Completed, r.Errors, r.Violations)
	}
	if uint64(sent) != r.Sent || r.Served != c.Served {
		t.Errorf("replay sent %d (stages %d), fresh shop served %d; recorded %d", r.Sent, sent, r.Served, c.Served)
	}

	if res.Plan == nil || res.Realism == nil {
		t.Fatalf("no plan or realism verdict: %+v %+v", res.Plan, res.Realism)
	}
	if res.Realism.Verdict != "pass" {
		// Schedule timing alone may stand without the replay being at
		// fault: a starved machine (a race build on two busy cores) makes
		// the sender itself late. Every other finding fails the demo.
		excused := true
		for _, f := range res.Realism.Findings {
			if strings.Contains(f, "ran behind its schedule") || strings.Contains(f, "waited for their session's order") || strings.Contains(f, "sent its last request") {
				t.Logf("schedule timing (machine starved): %s", f)
				continue
			}
			excused = false
		}
		if !excused {
			t.Errorf("realism verdict %s, want pass: %q", res.Realism.Verdict, res.Realism.Findings)
		}
	}
	for _, p := range []string{res.Files.Recording, res.Files.RunReport, res.Files.HTML} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("file %q: %v", p, err)
		}
	}
	if !strings.Contains(stderr.String(), "stage 10x") {
		t.Errorf("no live progress of the 10x stage on stderr:\n%s", stderr.String())
	}
}

// TestDemoStory checks the readable output (through the proxy this time):
// its headings in order, and the commands for the reader's own service.
func TestDemoStory(t *testing.T) {
	if testing.Short() {
		t.Skip("records and replays the shop")
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--users", "6", "--duration", "4s", "--no-live"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	at := 0
	for _, h := range []string{
		"1. Start the shop and record its users",
		"through the recording proxy",
		"2. Sessions in the recording",
		"3. Check the plan",
		"4. Replay against a fresh shop",
		"5. What the fresh shop saw",
		"6. How real was the replay?",
		"7. In short",
		"8. Now with your own service",
		"reprise replay traffic.rpz --target",
	} {
		i := strings.Index(out[at:], h)
		if i < 0 {
			t.Fatalf("%q missing (or out of order) in:\n%s", h, out)
		}
		at += i
	}
	if !strings.Contains(out, "removed when the demo ends") {
		t.Errorf("the story does not say its files are temporary")
	}
}

func TestDemoUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		// The presets contradict each other.
		{"short and long", []string{"demo", "--short", "--long"}},
		// Too many users for a demo on one machine.
		{"users above the cap", []string{"demo", "--users", "100000"}},
		// A recording too short to hold a session.
		{"duration too short", []string{"demo", "--duration", "1s"}},
		// The demo takes no arguments.
		{"an argument", []string{"demo", "extra"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit %d, want %d; stderr %s", code, exitUsage, stderr.String())
			}
		})
	}
}
