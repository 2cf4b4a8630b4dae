package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/session"
)

// writeCheckRecording writes a recording of users who log in for a 60 s
// token, call the API every 2 s and refresh 5 s before expiry, for 150 s
// each, arriving over a minute.
func writeCheckRecording(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.rpz")
	// SessionRules say the sessions were tracked at capture, so check and
	// replay take them as recorded.
	w, err := session.Create(path, session.Metadata{Source: "test", SessionRules: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	const base = int64(1_700_000_000_000_000_000)
	var xs []session.Exchange
	for u := 0; u < 20; u++ {
		key := fmt.Sprintf("s-%04d", u)
		at := time.Duration(u) * 3 * time.Second
		issued := at
		add := func(method, target string, ev ...session.TokenEvent) {
			s := base + int64(at)
			x := session.Exchange{Session: key, Request: session.Request{Method: method, Target: target},
				Response: session.Response{Status: 200},
				Timing:   session.Timing{RequestStart: s, RequestEnd: s, ResponseStart: s + 10e6, ResponseEnd: s + 10e6}}
			for _, e := range ev {
				e.ExpiresAt = s + 10e6 + int64(time.Minute)
				x.Tokens = append(x.Tokens, e)
			}
			xs = append(xs, x)
		}
		add("POST", "/auth/login", session.TokenEvent{Kind: session.TokenLogin, Name: "access_token"})
		for end := at + 150*time.Second; at < end; {
			at += 2 * time.Second
			if at-issued >= 55*time.Second {
				add("POST", "/auth/refresh", session.TokenEvent{Kind: session.TokenRefresh, Name: "access_token", Proactive: true})
				issued = at
				at += 10 * time.Millisecond
			}
			add("GET", fmt.Sprintf("/api/products/%d", u*7+int(at/time.Second)%5))
			at += 10 * time.Millisecond
			add("GET", "/api/cart")
		}
	}
	// Written in start order, as a capture writes them.
	sortByStart(xs)
	for i := range xs {
		if err := w.WriteExchange(&xs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func sortByStart(xs []session.Exchange) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j].Timing.RequestStart < xs[j-1].Timing.RequestStart; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

// writeRunReport writes a report of a faithful 1x replay of the recording
// at path, or of one that left out the product pages.
func writeRunReport(t *testing.T, path string, dropProducts bool) string {
	t.Helper()
	mr, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	rep := &replay.Report{Version: replay.ReportVersion, Target: "http://127.0.0.1:1", Speed: "1", Scale: 1,
		StatusCodes: map[string]uint64{}, Errors: map[string]uint64{}, Sessions: replay.SessionCounts{Total: 20, Completed: 20}}
	routes := map[string]uint64{}
	for {
		x, err := mr.Next()
		if err != nil {
			break
		}
		rep.Filtered.Read++
		route := session.Route(x.Request.Method, x.Request.Target)
		if dropProducts && strings.HasPrefix(route, "GET /api/products/") {
			rep.Filtered.ByPath++
			continue
		}
		routes[route]++
		rep.Requests.Scheduled++
		rep.Requests.Sent++
		rep.Requests.Responses++
		rep.StatusCodes["200"]++
	}
	for r, n := range routes {
		rep.Routes = append(rep.Routes, replay.RouteReport{Route: r, Requests: n})
	}
	rep.Lag = replay.Histogram{Count: rep.Requests.Sent, P50: 0.1, P99: 0.8, Max: 2}
	out := filepath.Join(t.TempDir(), "run.json")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := rep.WriteJSON(f); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheckCommand(t *testing.T) {
	rec := writeCheckRecording(t)
	faithful := writeRunReport(t, rec, false)
	filtered := writeRunReport(t, rec, true)
	tests := []struct {
		name string
		args []string
		code int
		out  []string // substrings of stdout
		err  string   // substring of stderr
	}{
		// As recorded: pass, exit 0.
		{name: "faithful plan", args: []string{"--speed", "1"}, code: 0, out: []string{"verdict: pass", "refreshes at peak"}},
		// Half speed lets the 60 s tokens expire before the recorded
		// refreshes: fail, exit 1.
		{name: "slow plan", args: []string{"--speed", "0.5"}, code: 1, out: []string{"fail: at 0.5x", "past its 1m0s lifetime", "verdict: fail"}, err: "realism check: fail"},
		// 10x is refresh-heavy: a warning, exit 0 ...
		{name: "warn", args: []string{"--speed", "10"}, code: 0, out: []string{"warn: at 10x", "verdict: warn"}},
		// ... and exit 1 with --strict.
		{name: "strict", args: []string{"--speed", "10", "--strict"}, code: 1, out: []string{"verdict: warn"}},
		// A cap below the peak makes the schedule slip.
		{name: "rate cap", args: []string{"--speed", "10", "--rate", "2/s"}, code: 1, out: []string{"--rate 2/s is below the plan's peak"}},
		// Thresholds move the bar: with the compression check off, 10x passes.
		{name: "threshold", args: []string{"--speed", "10", "--threshold", "refresh_compression_warn=0"}, code: 0, out: []string{"verdict: pass"}},
		// JSON for machines.
		{name: "json", args: []string{"--speed", "0.5", "--json"}, code: 1, out: []string{`"verdict": "fail"`, `"check": "expired_tokens"`, `"peak_rps"`}},
		// A faithful run passes.
		{name: "faithful run", args: []string{"--run", faithful}, code: 0, out: []string{"route mix distance      0.00", "not measured", "verdict: pass"}},
		// A run whose filters dropped the product pages fails on its mix.
		{name: "filtered run", args: []string{"--run", filtered}, code: 1, out: []string{"fail: the request mix differs", "GET /api/products/{id}"}},
		// Usage mistakes exit 2 and say what to do.
		{name: "plan flag with run", args: []string{"--run", faithful, "--speed", "2"}, code: 2, err: "drop --speed"},
		{name: "bad threshold", args: []string{"--threshold", "nope=1"}, code: 2, err: "no threshold \"nope\""},
		{name: "bad speed", args: []string{"--speed", "fast"}, code: 2, err: "speed \"fast\""},
		{name: "bad rejected", args: []string{"--rejected", "maybe"}, code: 2, err: "use recorded, live or skip"},
		{name: "bad ramp", args: []string{"--ramp", "1x,2x"}, code: 2, err: "only the last stage"},
		{name: "bad session keys", args: []string{"--session-keys", "cookies"}, code: 2, err: "use auto, recorded, recompute or connection"},
		{name: "recompute and keys", args: []string{"--recompute", "--session-keys", "connection"}, code: 2, err: "contradict"},
		// A missing run report is an error naming the file.
		{name: "missing run", args: []string{"--run", filepath.Join(t.TempDir(), "none.json")}, code: 1, err: "none.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"check", rec}, tc.args...), &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			for _, s := range tc.out {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			if tc.err != "" && !strings.Contains(errb.String(), tc.err) {
				t.Errorf("stderr lacks %q:\n%s", tc.err, errb.String())
			}
		})
	}
}

func TestCheckJSONStable(t *testing.T) {
	rec := writeCheckRecording(t)
	var out, errb bytes.Buffer
	if code := run([]string{"check", rec, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"verdict", "findings", "recording", "plan", "thresholds"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}

func TestCheckHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"Examples:", "--run run.json", "--strict", "Exit status", "mix_fail"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("help lacks %q", s)
		}
	}
}
