package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/session"
)

// runOK runs the command line args as main does and fails the test
// unless it exits 0; it returns what the command wrote.
func runOK(t *testing.T, args ...string) (stdout, stderr *bytes.Buffer) {
	t.Helper()
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	if code := run(args, stdout, stderr); code != exitOK {
		t.Fatalf("%s: exit %d: %s %s", args[0], code, stderr.String(), stdout.String())
	}
	return stdout, stderr
}

// writeRecording writes n GET exchanges of one session, 10ms apart.
func writeRecording(t *testing.T, n int) string {
	return writeExchanges(t, []string{"test"}, n, func(i int, x *session.Exchange) {
		x.Conn.ID, x.Session = 1, "s1"
		x.Request.Target = "/item/" + string(rune('a'+i))
	})
}

// writeExchanges writes a recording whose metadata lists the session rules
// rules, of n GET exchanges 10ms apart, each answered 200 after 1ms, on
// host shop; edit sets exchange i's connection, session and request.
func writeExchanges(t *testing.T, rules []string, n int, edit func(i int, x *session.Exchange)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.rpz")
	const t0 = int64(1_700_000_000_000_000_000)
	w, err := session.Create(path, session.Metadata{Source: "test", Start: t0, SessionRules: rules})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		at := t0 + int64(i)*10e6
		x := &session.Exchange{
			Index:    i,
			Request:  session.Request{Method: "GET", Proto: "HTTP/1.1", Header: session.Headers{{Name: "Host", Value: "shop"}}},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200},
			Timing:   session.Timing{RequestStart: at, RequestEnd: at, ResponseStart: at + 1e6, ResponseEnd: at + 1e6},
		}
		edit(i, x)
		if err := w.WriteExchange(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReplayCommand(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	rec := writeRecording(t, 5)
	tests := []struct {
		name     string
		args     []string
		code     int
		stderr   string // a fragment of stderr
		wantHits int64
	}{
		// A replay that completes: exit 0 and a summary.
		{"completes", []string{"replay", rec, "--target", srv.URL, "--speed", "10"}, exitOK, "replay COMPLETED", 5},
		// Scale doubles the requests.
		{"scale", []string{"replay", rec, "--target", srv.URL, "--speed", "max", "--scale", "2"}, exitOK, "scale 2", 10},
		// Filters: only one path.
		{"filter", []string{"replay", rec, "--target", srv.URL, "--speed", "max", "--include-path", "/item/c$"}, exitOK, "1 sent", 1},
		// No target is a usage error that names the flag.
		{"no target", []string{"replay", rec}, exitUsage, "--target", 0},
		// A speed out of range is a usage error.
		{"bad speed", []string{"replay", rec, "--target", srv.URL, "--speed", "1000"}, exitUsage, "--speed", 0},
		// The recorded connection is replayed as one connection, and the summary says so.
		{"recorded connections", []string{"replay", rec, "--target", srv.URL, "--speed", "10"}, exitOK, "connections  recorded: 1 opened, 4 requests reused one", 5},
		// --connections pooled shares the pool, and the summary says so.
		{"pooled", []string{"replay", rec, "--target", srv.URL, "--speed", "10", "--connections", "pooled"}, exitOK, "connections  pooled", 5},
		// A bad --connections value.
		{"bad connections", []string{"replay", rec, "--target", srv.URL, "--connections", "shared"}, exitUsage, "recorded or pooled", 0},
		// A bad --uncorrelated value.
		{"bad policy", []string{"replay", rec, "--target", srv.URL, "--uncorrelated", "maybe"}, exitUsage, "skip or send", 0},
		// A dead target fails the replay: exit 1 with the reason.
		{"dead target", []string{"replay", rec, "--target", dead, "--speed", "max", "--connect-timeout", "500ms"}, exitFailure, "requests failed", 0},
		// A missing recording.
		{"missing file", []string{"replay", filepath.Join(t.TempDir(), "nope.rpz"), "--target", srv.URL}, exitFailure, "nope.rpz", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if hits.Load() != tt.wantHits {
				t.Errorf("target got %d requests, want %d", hits.Load(), tt.wantHits)
			}
		})
	}
}

// --report writes the JSON that 'reprise report' and 'reprise check' read.
func TestReplayReportFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "run.json")
	stdout, _ := runOK(t, "replay", writeRecording(t, 3), "--target", srv.URL, "--speed", "max", "--report", out, "--json")
	rep := testkit.ReadFile(t, out, replay.ReadReport)
	if !rep.Completed || rep.Requests.Responses != 3 || rep.Routes[0].Route != "GET /item/a" {
		t.Errorf("report %+v", rep)
	}
	var fromStdout map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &fromStdout); err != nil || fromStdout["completed"] != true {
		t.Errorf("--json on stdout: %v %v", err, fromStdout["completed"])
	}
}
