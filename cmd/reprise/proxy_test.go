package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// serving is a listening verb started by startServing.
type serving struct {
	ctx            context.Context // the verb's root context
	cancel         context.CancelFunc
	stdout, stderr *testkit.SyncBuffer // written from the verb's goroutine
	done           <-chan int          // the exit code, once ctx ends
}

// startServing runs the command line args (a proxy or a shadow listening
// on a free address) in a goroutine and returns once it says it is
// listening.
func startServing(t *testing.T, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &serving{ctx: ctx, cancel: cancel, stdout: new(testkit.SyncBuffer), stderr: new(testkit.SyncBuffer)}
	done := make(chan int, 1)
	s.done = done
	go func() {
		root := newRootCmd(s.stdout, s.stderr)
		root.SetArgs(args)
		err := root.ExecuteContext(ctx)
		if err != nil {
			fmt.Fprintln(s.stderr, err)
		}
		done <- exitCode(err)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %s", args[0], s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

// stop cancels the verb's context, which is what SIGINT does through the
// root context, checks it exits cleanly, and decodes its --json summary
// into sum.
func (s *serving) stop(t *testing.T, sum any) {
	t.Helper()
	s.cancel()
	if code := <-s.done; code != exitOK {
		t.Fatalf("exit %d: %s", code, s.stderr.String())
	}
	if err := json.Unmarshal([]byte(s.stdout.String()), sum); err != nil {
		t.Fatalf("summary %q: %v", s.stdout.String(), err)
	}
}

func TestProxyRecordsAndRedacts(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	addr := testkit.FreeAddr(t)
	out := filepath.Join(t.TempDir(), "rec.rpz")
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	srv := startServing(t, "proxy", "--listen", addr, "--upstream", up.URL, "-o", out, "--json", "--redact-header", "Authorization")
	for i := range 10 {
		req := testkit.NewRequest(t, "POST", "http://"+addr+"/login", fmt.Sprintf("user=u%d&password=hunter2", i))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer tok")
		testkit.Send(t, cl, req)
	}
	cl.CloseIdleConnections()
	var sum proxy.Summary
	srv.stop(t, &sum)
	if sum.Exchanges != 10 || sum.Dropped != 0 {
		t.Fatalf("summary %+v", sum)
	}
	r, err := session.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for _, x := range shoptest.Collect(t, r) {
		n++
		if bytes.Contains(x.Request.Body, []byte("hunter2")) || x.Request.Header.Get("Authorization") == "Bearer tok" {
			t.Fatalf("not redacted: %q %q", x.Request.Body, x.Request.Header)
		}
		if x.Flags&session.FlagRedacted == 0 {
			t.Fatalf("flags %b", x.Flags)
		}
	}
	if n != 10 {
		t.Fatalf("recording holds %d exchanges, want 10", n)
	}
	md := r.Metadata()
	if len(md) != 1 || md[0].Counters.Exchanges != 10 || !strings.HasPrefix(md[0].Source, "proxy:") || strings.Join(md[0].Redaction, ",") != "form:password,header:authorization" {
		t.Fatalf("metadata %+v", md)
	}
	// Sessions are tracked as in capture: the rules in the metadata, one
	// bearer token's requests in one session with its stored timeline.
	if strings.Join(md[0].SessionRules, ",") != "auto" {
		t.Fatalf("session rules %q, want auto", md[0].SessionRules)
	}
	if tls := r.Timelines(); len(tls) != 1 || tls[0].Exchanges != 10 || sum.Sessions != 1 {
		t.Fatalf("timelines %+v, summary sessions %d; want one of 10 exchanges", tls, sum.Sessions)
	}
}

func TestProxyUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no upstream", []string{"proxy", "-o", "x.rpz"}},                                                                                 // --upstream is required
		{"no output", []string{"proxy", "--upstream", "http://127.0.0.1:1"}},                                                              // -o is required
		{"remote listen", []string{"proxy", "--listen", "0.0.0.0:9000", "--upstream", "http://127.0.0.1:1", "-o", "x"}},                   // refused without --allow-remote
		{"bad size", []string{"proxy", "--upstream", "http://127.0.0.1:1", "-o", "x", "--max-body", "lots"}},                              // sizes are numbers
		{"bad session rule", []string{"proxy", "--upstream", "http://127.0.0.1:1", "-o", "x", "--session", "nonsense:x"}},                 // rules are checked before listening
		{"sessions contradict", []string{"proxy", "--upstream", "http://127.0.0.1:1", "-o", "x", "--session", "bearer", "--no-sessions"}}, // one or the other
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != exitUsage {
				t.Fatalf("exit %d, want %d: %s", code, exitUsage, errb.String())
			}
		})
	}
}
