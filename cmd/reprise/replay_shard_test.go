package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/replay"
)

func TestShardOptions(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	now := time.Now()
	for _, tt := range []struct {
		name    string
		o       replayOptions
		getenv  func(string) string
		opts    int
		wantErr string
	}{
		// Neither flag nor environment: the whole run.
		{"none", replayOptions{}, env(), 0, ""},
		{"flag", replayOptions{shard: "1/4"}, env(), 1, ""},
		// An Indexed Job's pod: the index from Kubernetes, the total from the Job.
		{"indexed job", replayOptions{}, env(envIndex, "3", envShards, "4"), 1, ""},
		// Some other Indexed Job: no total, no shard.
		{"index alone", replayOptions{}, env(envIndex, "3"), 0, ""},
		{"bad environment", replayOptions{}, env(envIndex, "4", envShards, "4"), 0, "JOB_COMPLETION_INDEX"},
		{"bad flag", replayOptions{shard: "4/4"}, env(), 0, "--shard"},
		{"start at", replayOptions{startAt: "+2s"}, env(), 1, ""},
		{"bad start at", replayOptions{startAt: "soon"}, env(), 0, "--start-at"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := tt.o.shardOptions(tt.getenv, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(opts) != tt.opts {
				t.Errorf("%d options, %v; want %d", len(opts), err, tt.opts)
			}
		})
	}
}

// Reports printed between markers (a pod's log, --report -) are found
// in a log that holds other lines too; a refused merge names the file.
func TestReportMergeLogs(t *testing.T) {
	dir := t.TempDir()
	shard := func(k, n int, sha string) *replay.Report {
		return &replay.Report{Version: replay.ReportVersion, Target: "http://t", Speed: "1", Scale: 1,
			Recording: &replay.RecordingID{SHA256: sha, Format: 1}, Shard: &replay.ShardReport{K: k, N: n, Hash: "h"},
			Requests: replay.RequestCounts{Sent: uint64(10 * (k + 1))}}
	}
	var log bytes.Buffer
	for k := range 3 {
		log.WriteString("replay: progress line\n")
		if err := writeReportOut("-", shard(k, 3, "abc"), &log); err != nil {
			t.Fatal(err)
		}
		log.WriteString("replay COMPLETED\n")
	}
	logs := filepath.Join(dir, "shards.log")
	if err := os.WriteFile(logs, log.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run.json")
	stdout, stderr := runOK(t, "report", "merge", logs, "-o", out)
	if m := readRun(t, out); m.Requests.Sent != 60 || len(m.Shards) != 3 {
		t.Errorf("merged sent %d of %d shards, want 60 of 3", m.Requests.Sent, len(m.Shards))
	}

	other := filepath.Join(dir, "other.json")
	var b bytes.Buffer
	shard(1, 2, "def").WriteJSON(&b)
	os.WriteFile(other, b.Bytes(), 0o644)
	first := filepath.Join(dir, "first.json")
	b.Reset()
	shard(0, 2, "abc").WriteJSON(&b)
	os.WriteFile(first, b.Bytes(), 0o644)
	stderr.Reset()
	if code := run([]string{"report", "merge", first, other, "-o", out}, stdout, stderr); code != exitFailure ||
		!strings.Contains(stderr.String(), "other.json") || !strings.Contains(stderr.String(), "recording") {
		t.Errorf("exit %d, stderr %q: want a failure naming other.json and its recording", code, stderr.String())
	}
	// A log cut short (the pod still running) is refused, not half read.
	cut := filepath.Join(dir, "cut.log")
	os.WriteFile(cut, log.Bytes()[:log.Len()/2], 0o644)
	stderr.Reset()
	if code := run([]string{"report", "merge", cut, "-o", out}, stdout, stderr); code == exitOK || !strings.Contains(stderr.String(), "end marker") {
		t.Errorf("a cut log: exit %d, %q", code, stderr.String())
	}
}
