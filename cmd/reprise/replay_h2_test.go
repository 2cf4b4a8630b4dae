package main

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// TestReplayProtocolFlag: --protocol h2c sends an HTTP/1 recording as
// cleartext HTTP/2 and the summary counts the HTTP/2 connections; a bad
// value, or a protocol that does not fit the target's scheme, is a usage
// error that says what to use.
func TestReplayProtocolFlag(t *testing.T) {
	var h2, h1 atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		} else {
			h1.Add(1)
		}
	}), &http2.Server{})}
	go srv.Serve(ln)
	defer srv.Close()
	target := "http://" + ln.Addr().String()
	rec := writeRecording(t, 5)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
		h2     int64
	}{
		// As recorded: HTTP/1.
		{"auto", []string{"replay", rec, "--target", target, "--speed", "max"}, exitOK, "replay COMPLETED", 0},
		// Forced h2c: every request on the recorded connection, as HTTP/2.
		{"h2c", []string{"replay", rec, "--target", target, "--speed", "max", "--protocol", "h2c"}, exitOK, "1 of them HTTP/2", 5},
		{"bad protocol", []string{"replay", rec, "--target", target, "--protocol", "spdy"}, exitUsage, "auto, h1, h2 or h2c", 0},
		{"h2 needs https", []string{"replay", rec, "--target", target, "--protocol", "h2"}, exitUsage, "use --protocol h2c", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h2.Store(0)
			h1.Store(0)
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if h2.Load() != tt.h2 {
				t.Errorf("%d HTTP/2 requests (%d HTTP/1), want %d", h2.Load(), h1.Load(), tt.h2)
			}
		})
	}
}
