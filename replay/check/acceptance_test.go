package check_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/sim"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/check"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// This acceptance test is real end to end: the shop's simulated users are
// recorded through the recording proxy on loopback, their sessions and
// token events are tracked and written to a recording, and the recording
// is replayed with replay's library against two fresh shops at once,
// faithfully at 1x and with --exclude-path on the product pages. The check
// passes the first and fails the second on its request mix.

// shopConfig has 3 s tokens so that a few seconds of users refresh, with
// 1.5 s of margin (the simulator refreshes half a lifetime early) so that
// a busy test machine does not make a faithful replay late enough for
// tokens to expire.
func shopConfig() shop.Config { return shop.Config{AccessTTL: 3 * time.Second} }

func startShop(t *testing.T) *shop.Server { return shoptest.StartShop(t, shopConfig()) }

// recordShop records the simulated users through the proxy and writes
// what it recorded, with sessions and timelines, to a recording file.
func recordShop(t *testing.T) string {
	t.Helper()
	xs, _ := shoptest.RecordShop(t, shopConfig(), sim.Config{
		Users: 12, Seed: 1,
		ArrivalWindow: time.Second, Think: sim.LogNormal{Median: 100 * time.Millisecond, Sigma: 0.5},
		NoReactive: true, Duration: 20 * time.Second,
	})

	tr, err := identity.NewTracker()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "shop.rpz")
	// The rules in the metadata say, as capture.Record writes them, that
	// the sessions were tracked: replay and check take them as recorded.
	w, err := session.Create(path, session.Metadata{Source: "proxy:test", SessionRules: tr.Rules()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := session.Copy(w, tr.Annotate(session.NewSliceSource(xs...))); err != nil {
		t.Fatal(err)
	}
	for _, tl := range tr.Close() {
		if err := w.WriteTimeline(&tl); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// replayTo replays the recording at path against a fresh shop and writes
// the report to run.json, as 'reprise replay --report' does.
func replayTo(t *testing.T, path string, opts ...replay.Option) string {
	t.Helper()
	srv := startShop(t)
	r, err := replay.New(srv.URL(), append([]replay.Option{replay.WithMaxDuration(30 * time.Second)}, opts...)...)
	if err != nil {
		t.Error(err)
		return ""
	}
	mr, err := session.Open(path)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer mr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	rep, err := r.Run(ctx, mr)
	if err != nil {
		t.Errorf("replay: %v", err)
		return ""
	}
	out := filepath.Join(t.TempDir(), "run.json")
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Error(err)
	}
	return out
}

func TestAcceptanceShop(t *testing.T) {
	if testing.Short() {
		t.Skip("records and replays the shop for several seconds")
	}
	path := recordShop(t)
	rec, err := check.Load(context.Background(), []string{path}, check.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.SessionsFrom != "recording" || len(rec.Requests) == 0 {
		t.Fatalf("recording: %d requests, sessions from %s", len(rec.Requests), rec.SessionsFrom)
	}

	// The plan: 1x as recorded passes.
	res, err := check.CheckPlan(rec, check.Plan{}, check.DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != check.Pass {
		var b bytes.Buffer
		res.WriteText(&b)
		t.Errorf("plan at 1x: %s\n%s", res.Verdict, b.String())
	}

	// The plan at a quarter speed lets the 3 s tokens expire before the
	// recorded refreshes.
	res, err = check.CheckPlan(rec, check.Plan{Speed: 0.25}, check.DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	res.WriteText(&b)
	t.Logf("\n%s", b.String())
	if res.Verdict != check.Fail {
		t.Errorf("plan at 0.25x: %s, want fail", res.Verdict)
	}

	// Both replays at once, each against its own fresh shop.
	var faithful, filtered string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); faithful = replayTo(t, path) }()
	go func() { defer wg.Done(); filtered = replayTo(t, path, replay.WithExcludePath(`^/api/products/[0-9]+`)) }()
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, tc := range []struct {
		name    string
		run     string
		verdict check.Level
		check   string
	}{
		{"faithful 1x", faithful, check.Pass, ""},
		{"excluded route", filtered, check.Fail, "route_mix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := testkit.ReadFile(t, tc.run, check.ReadRun)
			// The machine running the tests is shared and small: its own
			// scheduling delays show as a few hundred ms of lag. Lag is
			// judged generously here; everything else at the defaults.
			th := check.DefaultThresholds()
			th.LagWarn, th.LagFail = 1, 5
			res, err := check.CheckRun(rec, rd, th)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			res.WriteText(&b)
			t.Logf("\n%s", b.String())
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", res.Verdict, tc.verdict)
			}
			if tc.check != "" {
				found := false
				for _, f := range res.Findings {
					found = found || (f.Check == tc.check && f.Level == tc.verdict)
				}
				if !found {
					t.Errorf("no %s finding %q", tc.verdict, tc.check)
				}
			}
		})
	}
}
