package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/sim"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/replay/shadow"
	"github.com/reprise-tool/reprise/session"
)

func TestShadowUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in the message
	}{
		// The shadow must be named.
		{"no shadow", []string{"--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1"}, "--shadow"},
		// One source, not two.
		{"two sources", []string{"--shadow", "http://127.0.0.1:2", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--iface", "lo", "--port", "80"}, "not both"},
		// No source at all.
		{"no source", []string{"--shadow", "http://127.0.0.1:2"}, "no source"},
		// Live mode needs a port.
		{"no port", []string{"--shadow", "http://127.0.0.1:2", "--iface", "lo"}, "--port"},
		// A sample is a share.
		{"bad sample", []string{"--shadow", "http://127.0.0.1:2", "--iface", "lo", "--port", "80", "--sample", "150%"}, "--sample"},
		// An ignore item is a JSON path or a header name.
		{"bad ignore", []string{"--shadow", "http://127.0.0.1:2", "--iface", "lo", "--port", "80", "--ignore", "$.a[x]"}, "neither an index"},
		// The shadow is a URL.
		{"bad shadow", []string{"--shadow", "127.0.0.1:2", "--iface", "lo", "--port", "80"}, "http://"},
		// A public listen address is refused.
		{"remote listen", []string{"--shadow", "http://127.0.0.1:2", "--listen", "0.0.0.0:9000", "--upstream", "http://127.0.0.1:1"}, "--allow-remote"},
		// A bad guard rule fails at parse time.
		{"bad abort", []string{"--shadow", "http://127.0.0.1:2", "--iface", "lo", "--port", "80", "--abort-on", "nonsense>1"}, "abort-on"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr testkit.SyncBuffer
			code := run(append([]string{"shadow"}, tc.args...), &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.want)
			}
		})
	}
}

// The verb end to end: simulated users through the proxy, sessions kept
// valid on the shadow with --allow-auth, writes skipped and counted, the
// JSON summary on stdout, the HTML report and the recording written.
func TestShadowProxyCLI(t *testing.T) {
	primary := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
	second := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
	addr := testkit.FreeAddr(t)
	dir := t.TempDir()
	out, html := filepath.Join(dir, "live.rpz"), filepath.Join(dir, "diff.html")
	srv := startServing(t, "shadow", "--listen", addr, "--upstream", primary.URL(), "--shadow", second.URL(),
		"--allow-auth", "-o", out, "--html", html, "--json", "--ignore", "$.items[*].quantity")
	_, err := sim.Run(srv.ctx, sim.Config{BaseURL: "http://" + addr, Users: 3, Seed: 3, Duration: 3 * time.Second,
		ArrivalWindow: 100 * time.Millisecond, Think: sim.LogNormal{Median: 5 * time.Millisecond}, NoReactive: true})
	if err != nil {
		t.Fatal(err)
	}
	var sum shadowJSON
	srv.stop(t, &sum)
	ps, ss := primary.Stats(), second.Stats()
	if ss.Logins != ps.Logins || ss.Logins == 0 {
		t.Errorf("shadow saw %d logins, primary %d", ss.Logins, ps.Logins)
	}
	if sum.Stats.Skipped["write"] == 0 || sum.Stats.Seen == 0 || sum.Compare.Compared == 0 {
		t.Errorf("summary %+v", sum.Stats)
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "Answers compared") {
		t.Errorf("html report: %v", err)
	}
	if n := countRecording(t, out); uint64(n) != sum.Stats.Seen {
		t.Errorf("recorded %d exchanges, saw %d", n, sum.Stats.Seen)
	}
	// The recording went through the one recording loop: passwords
	// hashed and named as the rule that fired, sessions and their
	// timelines as 'reprise proxy' writes them.
	mr, err := session.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	shoptest.Collect(t, mr)
	r := mr.Readers()[0]
	md := r.Metadata()
	if !strings.HasPrefix(md.Source, "proxy:") || len(md.SessionRules) == 0 || !slices.Contains(md.Redaction, "json:password") ||
		md.Counters.Exchanges != sum.Stats.Seen || len(r.Timelines()) == 0 {
		t.Errorf("metadata %+v, %d timelines", md, len(r.Timelines()))
	}
	// The JSON summary says what the recording's metadata says.
	if !slices.Equal(sum.Redaction, md.Redaction) {
		t.Errorf("summary redaction %q, recording %q", sum.Redaction, md.Redaction)
	}
}

// TestShadowSummaryRedaction: the human summary of 'shadow -o' says what
// capture's, import's and proxy's say of the recording's redaction: the
// rules that fired, or a loud warning with --keep-secrets.
func TestShadowSummaryRedaction(t *testing.T) {
	tests := []struct {
		name       string
		flags      []string
		want, dont string
	}{
		// The default: the bearer token hashed, and said so.
		{"default", nil, "  redacted: header:authorization", "WARNING"},
		// --keep-secrets: the warning first, then the mark.
		{"keep-secrets", []string{"--keep-secrets"}, "  WARNING: credentials kept in clear (--keep-secrets)", "header:authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
			second := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
			addr := testkit.FreeAddr(t)
			out := filepath.Join(t.TempDir(), "live.rpz")
			srv := startServing(t, append([]string{"shadow", "--listen", addr, "--upstream", primary.URL(), "--shadow", second.URL(), "-o", out}, tt.flags...)...)
			req, _ := http.NewRequest("GET", "http://"+addr+"/api/products?page=1", nil)
			req.Header.Set("Authorization", "Bearer opaque-token-123456")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			srv.cancel()
			if code := <-srv.done; code != exitOK {
				t.Fatalf("exit %d: %s", code, srv.stderr.String())
			}
			summary := srv.stderr.String()
			if !strings.Contains(summary, tt.want) || strings.Contains(summary, tt.dont) {
				t.Errorf("summary lacks %q or has %q:\n%s", tt.want, tt.dont, summary)
			}
		})
	}
}

// 'reprise proxy --shadow URL' is the shadow verb in proxy mode with its
// defaults: reads reach the second shop and are compared, the recording
// holds what the proxy saw, and recording-only flags are refused.
func TestProxyShadowFlag(t *testing.T) {
	primary := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
	second := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
	addr := testkit.FreeAddr(t)
	out := filepath.Join(t.TempDir(), "live.rpz")
	srv := startServing(t, "proxy", "--listen", addr, "--upstream", primary.URL(), "--shadow", second.URL(), "-o", out, "--json")
	for i := 0; i < 5; i++ { // without a token: both shops answer 401, compared all the same
		resp, err := http.Get("http://" + addr + "/api/products?page=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	time.Sleep(200 * time.Millisecond)
	var sum shadow.Summary
	srv.stop(t, &sum)
	if sum.Stats.Seen != 5 || sum.Compare.Compared == 0 {
		t.Errorf("saw %d exchanges, compared %d; want 5 seen and some compared", sum.Stats.Seen, sum.Compare.Compared)
	}
	if got := second.Stats().Requests; got == 0 {
		t.Errorf("the shadow shop received nothing")
	}
	if n := countRecording(t, out); n != 5 {
		t.Errorf("recorded %d exchanges, want 5", n)
	}
	code := run([]string{"proxy", "--upstream", primary.URL(), "--shadow", second.URL(), "--rotate-size", "1MB"}, io.Discard, io.Discard)
	if code != exitUsage {
		t.Errorf("--shadow with --rotate-size: exit %d, want %d", code, exitUsage)
	}
}
