package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/session"
)

// The acceptance tests of the guard rails (issue 7) run the CLI against
// the real shop on loopback. Their recordings are built here: logins of
// one-request sessions, evenly spaced, which the shop serves through its
// worker pool (so a degraded pool slows them) and counts per second.

// loginRecording writes n logins at perSecond, each its own session, with
// Host headers naming host (empty: "shop.example"). It returns its path.
func loginRecording(t *testing.T, n int, perSecond float64, host string) string {
	t.Helper()
	if host == "" {
		host = "shop.example"
	}
	path := filepath.Join(t.TempDir(), "logins.rpz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const t0 = int64(1_700_000_000_000_000_000)
	w, err := session.NewWriter(f, session.Metadata{Source: "test", Start: t0, SessionRules: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	gap := int64(float64(time.Second) / perSecond)
	for i := 0; i < n; i++ {
		at := t0 + int64(i)*gap
		ex := &session.Exchange{
			Conn: session.Conn{ID: uint64(i + 1)}, Session: fmt.Sprintf("s%d", i),
			Request: session.Request{Method: "POST", Target: "/auth/login", Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "Host", Value: host}, {Name: "Content-Type", Value: "application/x-www-form-urlencoded"}},
				Body:   []byte(fmt.Sprintf("username=user-%d&password=%s", i%20, shop.DefaultPassword))},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200},
			Timing:   session.Timing{RequestStart: at, RequestEnd: at, ResponseStart: at + 5e6, ResponseEnd: at + 5e6},
		}
		if err := w.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// testShop starts a shop on loopback that keeps its access log, with a
// fast login so that a healthy shop is far below any guard.
func testShop(t *testing.T) *shop.Server {
	return shoptest.StartShop(t, shop.Config{KeepLog: true,
		Latency: map[string]shop.LogNormal{"POST /auth/login": {Median: 2 * time.Millisecond, Sigma: 0.2}}})
}

func readRun(t *testing.T, path string) *replay.Report {
	t.Helper()
	return testkit.ReadFile(t, path, replay.ReadReport)
}

// Abort: the shop degrades mid-run; the p99 guard trips within the window
// plus a second, no new request goes out, the in-flight ones drain, the
// report and the HTML say which guard and when, the on-abort command runs
// once, and the process exits 3.
func TestReplayAbortOnDegradedShop(t *testing.T) {
	srv := testShop(t)
	rec := loginRecording(t, 400, 40, "") // 10 s at 40/s
	dir := t.TempDir()
	runJSON, page, hookOut := filepath.Join(dir, "run.json"), filepath.Join(dir, "run.html"), filepath.Join(dir, "hook.txt")
	const window = 2 * time.Second
	degradeAt := make(chan time.Time, 1)
	go func() {
		time.Sleep(2 * time.Second)
		srv.Degrade(shop.Degrade{ExtraLatencyMS: 700})
		degradeAt <- time.Now()
	}()
	var stdout, stderr bytes.Buffer
	code := run([]string{"replay", rec, "--target", srv.URL(), "--abort-on", "p99>300ms", "--abort-window", window.String(),
		"--drain-timeout", "5s", "--on-abort", `echo "$REPRISE_ABORT_RULE $REPRISE_REPORT" >> ` + hookOut,
		"--report", runJSON, "--html", page, "--progress", "1s"}, &stdout, &stderr)
	ended := time.Now()
	if code != exitGuard {
		t.Fatalf("exit %d, want %d (guard); stderr:\n%s", code, exitGuard, stderr.String())
	}
	deg := <-degradeAt
	rep := readRun(t, runJSON)
	a := rep.Abort
	if a == nil || a.Kind != replay.AbortGuard || a.Rule != "p99>300ms" {
		t.Fatalf("report's abort %+v", a)
	}
	// It stopped within the window plus a second of the degradation
	// (plus the 700ms the first slow request took to finish, generous).
	if late := a.At.Sub(deg); late > window+time.Second+time.Second || late < 0 {
		t.Errorf("guard tripped %v after the shop degraded, want within %v", late, window+time.Second)
	}
	for _, want := range []string{"STOPPED BY GUARD p99>300ms", "ABORTED   by guard p99>300ms", "running --on-abort"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	b, err := os.ReadFile(hookOut)
	if err != nil || strings.Count(string(b), "\n") != 1 || !strings.HasPrefix(string(b), "p99>300ms "+runJSON) {
		t.Errorf("on-abort wrote %q (%v), want one line naming the rule and the report", b, err)
	}
	// Nothing new reached the shop after the stop: every arrival is
	// before the trip, and none after Run. A request already past its
	// last check when the guard tripped may arrive later, by a moment on
	// an idle machine and by as long as the scheduler stalls it on a
	// loaded one; such requests are few (the ones between their check and
	// the wire), while a stop that did not hold would send the rest of
	// the schedule, dozens a second. So late arrivals are counted, not
	// timed.
	var last time.Time
	var late []time.Duration
	for _, e := range srv.Log() {
		if e.Arrival.After(last) {
			last = e.Arrival
		}
		if d := e.Arrival.Sub(a.At); d > 200*time.Millisecond {
			late = append(late, d)
		}
	}
	if len(late) > 5 {
		t.Errorf("the shop got %d requests more than 200ms after the trip (%v): the stop did not hold", len(late), late)
	} else if len(late) > 0 {
		t.Logf("%d requests already past their last check arrived more than 200ms after the trip: %v", len(late), late)
	}
	n := srv.Stats().Requests
	time.Sleep(300 * time.Millisecond)
	if m := srv.Stats().Requests; m != n || last.After(ended) {
		t.Errorf("shop counted %d then %d requests after the replay ended", n, m)
	}
	if rep.Requests.NotSent == 0 || rep.Completed {
		t.Errorf("requests %+v completed %v: the stop should leave requests unsent", rep.Requests, rep.Completed)
	}
	html, _ := os.ReadFile(page)
	if !strings.Contains(string(html), `class="abort"`) {
		t.Error("the HTML page does not mark the abort")
	}
	t.Logf("tripped %v after degrading; %d sent, %d not sent", a.At.Sub(deg), rep.Requests.Sent, rep.Requests.NotSent)
}

// shopSeconds buckets the shop's arrivals by whole seconds since the
// first one.
func shopSeconds(log []shop.LogEntry) []int {
	if len(log) == 0 {
		return nil
	}
	first := log[0].Arrival
	for _, e := range log {
		if e.Arrival.Before(first) {
			first = e.Arrival
		}
	}
	var out []int
	for _, e := range log {
		i := int(e.Arrival.Sub(first) / time.Second)
		for len(out) <= i {
			out = append(out, 0)
		}
		out[i]++
	}
	return out
}

// Rate cap: at --speed max under --rate 40/s, no second of the shop's own
// counts holds more than 40 requests, and the wait shows as lag.
func TestReplayRateCap(t *testing.T) {
	srv := testShop(t)
	rec := loginRecording(t, 100, 200, "")
	runJSON := filepath.Join(t.TempDir(), "run.json")
	runOK(t, "replay", rec, "--target", srv.URL(), "--speed", "max", "--rate", "40/s", "--report", runJSON, "--progress", "0")
	// The cap spaces sends 25 ms apart; a request granted just before a
	// second's end can still be stamped just after it by the scheduler,
	// so one second may count one over. Two over is the cap failing.
	for _, ps := range srv.Stats().PerSecond { // by Unix second, as the shop counts
		if ps > 41 {
			t.Errorf("the shop counted %d requests in one second, above the cap of 40: %v", ps, srv.Stats().PerSecond)
		}
	}
	rep := readRun(t, runJSON)
	if rep.Limits.RatePerSecond != 40 || rep.Limits.RateWaits.Waited == 0 || rep.Lag.Max < 1000 {
		t.Errorf("limits %+v, lag max %.0fms: the cap's wait should show as lag", rep.Limits, rep.Lag.Max)
	}
	if len(rep.PerSecond) < 2 {
		t.Errorf("per_second %v", rep.PerSecond)
	}
}

// Ramp: 1x for 2 s, then 4x: the schedule makes 20 requests due a
// second, then 80, and the shop sees about that (generous bounds). The
// schedule's figures are fixed before anything is sent; the shop's
// depend on the machine (a stall moves requests into the next second),
// so they are held to the bounds only when every send left within 100ms
// of its due time, and logged otherwise.
func TestReplayRamp(t *testing.T) {
	srv := testShop(t)
	rec := loginRecording(t, 120, 20, "") // 6 s at 20/s
	runJSON := filepath.Join(t.TempDir(), "run.json")
	runOK(t, "replay", rec, "--target", srv.URL(), "--ramp", "1x:2s,4x", "--report", runJSON, "--progress", "0")
	secs := shopSeconds(srv.Log())
	rep := readRun(t, runJSON)
	var due []float64
	for _, s := range rep.Series {
		due = append(due, s.Intended)
	}
	t.Logf("due per second %v, shop per second %v, lag max %.0fms", due, secs, rep.Lag.Max)
	if len(due) < 3 || due[0] != 20 || due[1] != 20 || due[2] != 80 {
		t.Errorf("due per second %v: want 20, 20, then 80", due)
	}
	if bad := len(secs) < 3 || secs[0] > 30 || secs[1] > 30 || secs[2] < 50; bad && rep.Lag.Max < 100 {
		t.Errorf("shop per second %v: want about 20, 20, then 80", secs)
	} else if bad {
		t.Logf("shop per second %v, off the schedule's by sends up to %.0fms late", secs, rep.Lag.Max)
	}
	if len(rep.Stages) != 2 || rep.Stages[0].Name != "1x:2s" || rep.Stages[1].Start != 2 {
		t.Errorf("stages %+v", rep.Stages)
	}
}

// Dry run: the plan is printed and nothing reaches the target.
func TestReplayDryRun(t *testing.T) {
	srv := testShop(t)
	rec := loginRecording(t, 60, 20, "")
	stdout, _ := runOK(t, "replay", rec, "--target", srv.URL(), "--ramp", "1x:1s,2x", "--dry-run")
	for _, want := range []string{"dry run: nothing sent", "duration", "sessions          60", "peak req/s", "peak concurrency", "refresh events", "stage 1x:1s"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout.String())
		}
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("the shop got %d requests from a dry run", n)
	}
}

// The recording's own server is refused unless --allow-original-host.
func TestReplayOriginalHost(t *testing.T) {
	srv := testShop(t)
	rec := loginRecording(t, 5, 50, srv.Addr().String())
	tests := []struct {
		name  string
		extra []string
		code  int
		want  string // in stderr
		hits  int64
	}{
		// The Host header of the recording is the target: refused.
		{"refused", nil, exitUsage, "original server", 0},
		// Named on purpose: it goes.
		{"allowed", []string{"--allow-original-host"}, exitOK, "COMPLETED", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Stats().Requests
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"replay", rec, "--target", srv.URL(), "--speed", "max", "--progress", "0"}, tt.extra...), &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if got := srv.Stats().Requests - before; got != tt.hits {
				t.Errorf("shop got %d requests, want %d", got, tt.hits)
			}
		})
	}
}

// The page of a real run, redrawn by 'reprise report', is self-contained
// and renders in headless Chromium.
func TestReportHTMLInChromium(t *testing.T) {
	srv := testShop(t)
	rec := loginRecording(t, 60, 30, "")
	dir := t.TempDir()
	runJSON, page := filepath.Join(dir, "run.json"), filepath.Join(dir, "out.html")
	runOK(t, "replay", rec, "--target", srv.URL(), "--speed", "2", "--report", runJSON, "--progress", "0")
	runOK(t, "report", runJSON, "--html", page)
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	fetching := regexp.MustCompile(`(?i)(\b(src|href|srcset|action|poster|data|xlink:href)\s*=)|url\s*\(|@import|<\s*(link|script|iframe|object|embed|base|img|image|use)\b`)
	if m := fetching.FindAllString(html, -1); len(m) > 0 {
		t.Errorf("page can fetch: %q", m)
	}
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9]`).FindAllString(strings.ReplaceAll(html, srv.URL(), ""), -1); len(m) > 0 {
		t.Errorf("page holds URLs besides the target: %q", m)
	}
	bin, err := exec.LookPath("chromium")
	if err != nil || testing.Short() {
		t.Skip("chromium is not installed (Debian package chromium) or -short: the page was not loaded in a browser")
	}
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--window-size=1280,1800"}
	dom, err := exec.CommandContext(ctx, bin, append(args, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	for _, want := range []string{`class="series achieved" d="M`, `class="series intended" d="M`, `class="series p99" d="M`, `id="summary"`, `id="routes"`} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("rendered DOM lacks %s", want)
		}
	}
	if err := exec.CommandContext(ctx, bin, append(args, "--screenshot="+shot, "file://"+page)...).Run(); err != nil {
		t.Fatalf("chromium screenshot: %v", err)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
}

// TestHelperCLI is not a test: TestReplaySIGINT runs the test binary again
// with REPRISE_TEST_CLI_ARGS set, and this runs the CLI in that child.
func TestHelperCLI(t *testing.T) {
	args := os.Getenv("REPRISE_TEST_CLI_ARGS")
	if args == "" {
		t.Skip("helper process for TestReplaySIGINT")
	}
	os.Exit(run(strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
}

// SIGINT stops in order: nothing new is sent, the report is written and
// says so, exit 130. A second SIGINT abandons what is in flight at once.
func TestReplaySIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no child process")
	}
	tests := []struct {
		name    string
		signals int
		degrade int64 // extra latency in the shop, ms
		maxWait time.Duration
	}{
		// One interrupt: the drain lets the in-flight requests finish.
		{"once", 1, 0, 10 * time.Second},
		// Two: requests stuck in a slow shop are abandoned, the drain
		// (20s) is not waited out.
		{"twice", 2, 15000, 8 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testShop(t)
			if tt.degrade > 0 {
				srv.Degrade(shop.Degrade{ExtraLatencyMS: tt.degrade})
			}
			rec := loginRecording(t, 400, 20, "") // 20 s
			runJSON := filepath.Join(t.TempDir(), "run.json")
			args := []string{"replay", rec, "--target", srv.URL(), "--report", runJSON, "--drain-timeout", "20s", "--abort-on", "none", "--progress", "0"}
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCLI$")
			cmd.Env = append(os.Environ(), "REPRISE_TEST_CLI_ARGS="+strings.Join(args, "\x1f"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until requests are going out (the shop counts a
			// request when it has served it, so a slow shop is given time).
			deadline := time.Now().Add(10 * time.Second)
			if tt.degrade > 0 {
				deadline = time.Now().Add(2 * time.Second)
			}
			for srv.Stats().Requests < 10 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			for i := 0; i < tt.signals; i++ {
				cmd.Process.Signal(syscall.SIGINT)
				time.Sleep(300 * time.Millisecond)
			}
			sent := time.Now()
			if !testkit.WaitOrKill(cmd, tt.maxWait) {
				t.Fatalf("still running %v after SIGINT:\n%s", tt.maxWait, out.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Fatalf("exit %d, want 130:\n%s", code, out.String())
			}
			rep := readRun(t, runJSON)
			if rep.Abort == nil || rep.Abort.Kind != replay.AbortInterrupt || rep.Requests.NotSent == 0 {
				t.Errorf("abort %+v requests %+v", rep.Abort, rep.Requests)
			}
			if tt.signals == 2 && !rep.Abort.Abandoned {
				t.Errorf("two interrupts: the report should say requests were abandoned: %+v", rep.Abort)
			}
			n := srv.Stats().Requests
			time.Sleep(300 * time.Millisecond)
			if m := srv.Stats().Requests; m != n {
				t.Errorf("the shop got %d requests after the process ended", m-n)
			}
			t.Logf("ended %v after the last signal; %d sent, %d not sent", time.Since(sent).Round(time.Millisecond), rep.Requests.Sent, rep.Requests.NotSent)
		})
	}
}

// --compare adds the differences from the recording to the summary, the
// JSON and the page.
func TestReplayCompare(t *testing.T) {
	srv := testShop(t)
	rec := loginRecording(t, 10, 100, "")
	dir := t.TempDir()
	runJSON, page := filepath.Join(dir, "run.json"), filepath.Join(dir, "run.html")
	_, stderr := runOK(t, "replay", rec, "--target", srv.URL(), "--speed", "max", "--compare", "--compare-ignore", "Date",
		"--report", runJSON, "--html", page, "--progress", "0")
	rep := readRun(t, runJSON)
	if rep.Compare == nil || rep.Compare.Compared != 10 {
		t.Fatalf("compare %+v", rep.Compare)
	}
	html, _ := os.ReadFile(page)
	if !strings.Contains(stderr.String(), "compared  10 responses") || !strings.Contains(string(html), "Responses differing from the recording") {
		t.Errorf("the summary or the page lacks the comparison:\n%s", stderr.String())
	}
	// --compare-ignore alone is a mistake.
	if code := run([]string{"replay", rec, "--target", srv.URL(), "--compare-ignore", "Date"}, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("--compare-ignore without --compare: exit %d, want %d", code, exitUsage)
	}
}
