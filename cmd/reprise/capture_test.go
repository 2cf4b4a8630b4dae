package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

const captureFixture = "../../capture/testdata/tcpdump-lo.pcap"

// TestCaptureCommand runs 'reprise capture' on the committed tcpdump
// capture and reads the recording back.
func TestCaptureCommand(t *testing.T) {
	tests := []captureCase{
		// A plain import with the text summary.
		{name: "import", args: []string{"--pcap", captureFixture}, exchanges: 8, stderr: "captured 8 exchanges (0 incomplete) on 2 connections"},
		// A glob, a port filter and --count.
		{name: "glob and count", args: []string{"--pcap", "../../capture/testdata/tcpdump-*.pcap", "--port", "1", "--count", "3"}, exchanges: 0, stderr: "captured 0 exchanges"},
		{name: "count", args: []string{"--pcap", captureFixture, "--count", "3"}, exchanges: 3, stderr: "stopped at --count"},
		// Command-line mistakes are usage errors.
		{name: "no source", args: []string{}, code: exitUsage, stderr: "give --pcap FILE or --iface NAME"},
		{name: "both sources", args: []string{"--pcap", captureFixture, "--iface", "lo"}, code: exitUsage},
		{name: "bad max body", args: []string{"--pcap", captureFixture, "--max-body", "lots"}, code: exitUsage, stderr: "--max-body"},
		{name: "max body too big", args: []string{"--pcap", captureFixture, "--max-body", "1GiB"}, code: exitUsage},
		// A missing file fails and names it.
		{name: "missing file", args: []string{"--pcap", "nope.pcap"}, code: exitFailure, stderr: "nope.pcap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t) })
	}
}

// captureCase is one 'reprise capture' run of a table: its arguments
// (without -o) and what it must give.
type captureCase struct {
	name      string
	args      []string
	code      int
	exchanges int    // in the recording, when code is 0
	stderr    string // substring expected on stderr
}

// run runs the case with -o in a new directory and checks the exit code,
// stderr and, on success, the recording's exchange count. It returns the
// recording's path, or "" when the case expects a failure.
func (tt captureCase) run(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rec.rpz")
	var stdout, stderr bytes.Buffer
	code := run(append(append([]string{"capture"}, tt.args...), "-o", out), &stdout, &stderr)
	if code != tt.code {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
	}
	if !strings.Contains(stderr.String(), tt.stderr) {
		t.Errorf("stderr %q does not contain %q", stderr.String(), tt.stderr)
	}
	if tt.code != 0 {
		return ""
	}
	if n := countRecording(t, out); n != tt.exchanges {
		t.Errorf("recording holds %d exchanges, want %d", n, tt.exchanges)
	}
	return out
}

// TestCaptureJSON checks the --json summary and the metadata counters.
func TestCaptureJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rec.rpz")
	var stdout, stderr bytes.Buffer
	code := run([]string{"capture", "--pcap", captureFixture, "-o", out, "--json", "--redact-header", "User-Agent"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var sum captureSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, stdout.String())
	}
	if sum.Counters.Exchanges != 8 || sum.Counters.Connections != 2 || sum.BytesWritten == 0 || len(sum.Files) != 1 {
		t.Errorf("summary = %+v", sum)
	}
	if len(sum.Redaction) != 1 || sum.Redaction[0] != "header:user-agent" {
		t.Errorf("redaction = %v", sum.Redaction)
	}
	r, err := session.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	x, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if ua := x.Request.Header.Get("User-Agent"); !strings.HasPrefix(ua, "rdct_") || x.Flags&session.FlagRedacted == 0 {
		t.Errorf("User-Agent = %q, flags %v: want it redacted", ua, x.Flags)
	}
}

func countRecording(t *testing.T, path string) int {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	r, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}
