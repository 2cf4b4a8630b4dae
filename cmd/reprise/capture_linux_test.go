//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
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
		testkit.Send(t, http.DefaultClient, testkit.NewRequest(t, "GET", fmt.Sprintf("%s/r%d", srv.URL, i), ""))
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

// TestCaptureSIGTERM stops an open-ended live capture with SIGTERM: the
// recording is closed cleanly and holds the exchanges made before.
func TestCaptureSIGTERM(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	out := filepath.Join(t.TempDir(), "term.rpz")
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"capture", "--iface", "lo", "--port", strconv.Itoa(port), "-o", out}, &stdout, &stderr)
	}()
	// The recording file exists once the socket is open and run's signal
	// handler is in place.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(out); err == nil {
			break
		}
		select {
		case code := <-done:
			if strings.Contains(stderr.String(), "CAP_NET_RAW") {
				t.Skipf("live capture not permitted: %s", stderr.String())
			}
			t.Fatalf("capture ended early with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("capture did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 10; i++ {
		testkit.Send(t, http.DefaultClient, testkit.NewRequest(t, "GET", srv.URL+"/x", ""))
	}
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("capture did not stop on SIGTERM")
	}
	if got := countRecording(t, out); got != 10 {
		t.Errorf("recording holds %d exchanges, want 10; stderr:\n%s", got, stderr.String())
	}
}
