//go:build linux

package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

var h2loadRPS = regexp.MustCompile(`finished in [^,]+, ([0-9.]+) req/s`)

// h2cBenchRecording writes conns recorded h2c connections of perConn
// GET / streams each, every stream its own session (as h2load's streams
// are independent), all due at once, each answered with the JSON a real
// service sends: a per-response id nobody carries back, which the replay
// reads for its correlation plan as it would any recording's.
func h2cBenchRecording(b *testing.B, dir string, conns, perConn int) string {
	b.Helper()
	path := filepath.Join(dir, "h2c.rpz")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := session.NewWriter(f, session.Metadata{Source: "bench:h2c"}, session.Compression(1))
	if err != nil {
		b.Fatal(err)
	}
	for k := range perConn {
		for c := range conns {
			// onConn clears the session (the connection's would be
			// taken), so the stream's own goes in after it.
			x := rec("", "GET", "/", float64(k)*0.01, float64(k)*0.01+0.5, onConn(uint64(c+1)), h2Stream(fmt.Sprintf("c%d-%d", c, k), uint32(2*k+1)))
			x.Index = k
			x.Response.Header = append(x.Response.Header, session.Header{Name: "content-type", Value: "application/json"})
			x.Response.Body = fmt.Appendf(nil, `{"ok":true,"id":"%032x"}`, k*conns+c)
			x.Response.BodySize = int64(len(x.Response.Body))
			if err := w.WriteExchange(x); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkH2VersusH2load measures `--speed max` of an h2c recording
// against nginx serving h2c beside h2load (Debian's nghttp2-client) with
// the same connections and streams at once: h2load -c 8 -m 16 -n N, then
// the reprise binary replaying 8 recorded connections of N/8 streams with
// 8×16 in flight, as a child process so that its CPU time and peak RSS
// are its own (runChild). nginx answers each request with JSON carrying
// its $request_id, as the HTTP/1 bench's json location does, so that
// both clients read a body that differs every time. nginx allows 16
// streams per connection, so that neither side runs more than h2load's
// -m on a connection: the replay's 128 in flight would otherwise gather
// unevenly on its 8 connections. The target is a ratio of at
// least 0.8. Run it alone:
//
//	go test ./replay -run '^$' -bench H2VersusH2load -benchtime 1x
//
// REPRISE_H2BENCH_N sets the requests of each side (default 40000);
// REPRISE_H2BENCH_DIR keeps the recording and the binary in a directory.
func BenchmarkH2VersusH2load(b *testing.B) {
	if _, err := exec.LookPath("h2load"); err != nil {
		b.Skip("h2load not installed (apt-get install nghttp2-client)")
	}
	const conns, streams = 8, 16
	n := 40000
	if v, err := strconv.Atoi(os.Getenv("REPRISE_H2BENCH_N")); err == nil && v >= conns {
		n = v / conns * conns // a longer run for a profile
	}
	addr := testkit.FreeAddr(b)
	dir := b.TempDir()
	if keep := os.Getenv("REPRISE_H2BENCH_DIR"); keep != "" {
		dir = keep // the recording and the binary stay, to profile by hand
	}
	testkit.StartNginx(b, dir, addr, testkit.H2cJSONServer(addr), "$status")
	rec := h2cBenchRecording(b, dir, conns, n/conns)
	bin := buildReprise(b, dir)
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("h2load", "-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), "-n", strconv.Itoa(n), "http://"+addr+"/")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		h2lRSS, err := runChild(cmd)
		m := h2loadRPS.FindSubmatch(out.Bytes())
		if err != nil || m == nil {
			b.Fatalf("h2load: %v\n%s", err, out.Bytes())
		}
		h2l, _ := strconv.ParseFloat(string(m[1]), 64)
		h2lUs := us(usage(cmd.ProcessState)) / float64(n)

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		rp := exec.CommandContext(ctx, bin, "replay", rec, "--target", "http://"+addr, "--speed", "max",
			"--max-inflight", strconv.Itoa(conns*streams), "--session-keys", "recorded", "--allow-original-host", "--json")
		var stdout, stderr bytes.Buffer
		rp.Stdout, rp.Stderr = &stdout, &stderr
		repRSS, err := runChild(rp)
		cancel()
		if err != nil {
			b.Fatalf("replay: %v\n%s", err, stderr.Bytes())
		}
		var rep Report
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			b.Fatalf("replay's report: %v\n%s", err, stderr.Bytes())
		}
		if rep.Requests.Errors > 0 || rep.Requests.Responses != uint64(n) || rep.Connections.HTTP2 != conns {
			b.Fatalf("replay: %+v, connections %+v", rep.Requests, rep.Connections)
		}
		done := float64(rep.Requests.Responses)
		rps := done / (rep.DurationMS / 1000)
		// CPU per request says what each client costs itself, which a
		// loaded machine disturbs far less than the rates.
		repUs := us(usage(rp.ProcessState)) / done
		b.Logf("h2load -c%d -m%d -n%d: %.0f req/s, %.1f µs CPU/req, peak RSS %.1f MiB; replay --speed max of %d h2c connections × %d streams, %d in flight: %.0f req/s, %.1f µs CPU/req, peak RSS %.1f MiB, status %s; ratio %.2f (load %s)",
			conns, streams, n, h2l, h2lUs, h2lRSS, conns, n/conns, conns*streams, rps, repUs, repRSS, FormatCounts(rep.StatusCodes), rps/h2l, loadAverage())
		b.ReportMetric(h2lUs, "h2load_cpu_µs/req")
		b.ReportMetric(repUs, "replay_cpu_µs/req")
		b.ReportMetric(h2lRSS, "h2load_peak_MiB")
		b.ReportMetric(repRSS, "replay_peak_MiB")
		b.ReportMetric(h2l, "h2load_req/s")
		b.ReportMetric(rps, "replay_req/s")
		b.ReportMetric(rps/h2l, "ratio")
	}
}
