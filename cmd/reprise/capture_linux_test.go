//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCaptureIface runs 'reprise capture --iface lo' for a bounded time
// while a client sends a known number of requests to a loopback server,
// and checks the recording holds each once. It skips where live capture
// is not permitted.
func TestCaptureIface(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	out := filepath.Join(t.TempDir(), "lo.rpz")
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"capture", "--iface", "lo", "--port", strconv.Itoa(port), "--duration", "3s", "-o", out, "--json"}, &stdout, &stderr)
	}()
	time.Sleep(time.Second) // let the socket open before traffic starts
	const n = 50
	for i := 0; i < n; i++ {
		resp, err := http.Get(fmt.Sprintf("%s/r%d", srv.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	code := <-done
	if code != 0 && strings.Contains(stderr.String(), "CAP_NET_RAW") {
		t.Skipf("live capture not permitted: %s", stderr.String())
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := countRecording(t, out); got != n {
		t.Errorf("recording holds %d exchanges, want %d\n%s", got, n, stdout.String())
	}
}
