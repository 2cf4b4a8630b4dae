//go:build linux

package replay

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

var h2loadRPS = regexp.MustCompile(`finished in [^,]+, ([0-9.]+) req/s`)

// h2cBenchRecording is conns recorded h2c connections of perConn GET / streams
// each, every stream its own session (as h2load's streams are
// independent), all due at once.
func h2cBenchRecording(conns, perConn int) []*session.Exchange {
	var exs []*session.Exchange
	for k := range perConn {
		for c := range conns {
			// onConn clears the session (the connection's would be
			// taken), so the stream's own goes in after it.
			x := rec("", "GET", "/", float64(k)*0.01, float64(k)*0.01+0.5, onConn(uint64(c+1)), h2Stream(fmt.Sprintf("c%d-%d", c, k), uint32(2*k+1)))
			x.Index = k
			exs = append(exs, x)
		}
	}
	return exs
}

// BenchmarkH2VersusH2load measures `--speed max` of an h2c recording
// against nginx serving h2c beside h2load (Debian's nghttp2-client) with
// the same connections and streams at once: h2load -c 8 -m 16 -n N, then
// a replay of 8 recorded connections of N/8 streams with 8×16 in flight.
// nginx allows 16 streams per connection, so that neither side runs more
// than h2load's -m on a connection: the replay's 128 in flight would
// otherwise gather unevenly on its 8 connections. The target is a
// ratio of at least 0.8. Run it alone:
//
//	go test ./replay -run '^$' -bench H2VersusH2load -benchtime 1x
//
// REPRISE_H2BENCH_N sets the requests of each side (default 40000).
func BenchmarkH2VersusH2load(b *testing.B) {
	if _, err := exec.LookPath("h2load"); err != nil {
		b.Skip("h2load not installed (apt-get install nghttp2-client)")
	}
	const conns, streams = 8, 16
	n := 40000
	if v, err := strconv.Atoi(os.Getenv("REPRISE_H2BENCH_N")); err == nil && v >= conns {
		n = v / conns * conns // a longer run for a profile
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := b.TempDir()
	testkit.StartNginx(b, dir, addr, `server {
		listen `+addr+` http2;
		keepalive_requests 1000000;
		http2_max_concurrent_streams 16;
		access_log off;
		location / { return 200 "ok\n"; }
	}`, "$status")
	exs := h2cBenchRecording(conns, n/conns)
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("h2load", "-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), "-n", strconv.Itoa(n), "http://"+addr+"/")
		out, err := cmd.CombinedOutput()
		m := h2loadRPS.FindSubmatch(out)
		if err != nil || m == nil {
			b.Fatalf("h2load: %v\n%s", err, out)
		}
		h2l, _ := strconv.ParseFloat(string(m[1]), 64)
		h2lCPU := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		r, err := New("http://"+addr, WithPacer(Max{}), WithMaxInFlight(conns*streams))
		if err != nil {
			b.Fatal(err)
		}
		cpu0, r0, w0 := pidCPU(os.Getpid()), ioCalls("syscr"), ioCalls("syscw")
		rep, err := r.Run(context.Background(), session.NewSliceSource(exs...))
		if err != nil {
			b.Fatal(err)
		}
		cpu, reads, writes := pidCPU(os.Getpid())-cpu0, ioCalls("syscr")-r0, ioCalls("syscw")-w0
		if rep.Requests.Errors > 0 || rep.Connections.HTTP2 != conns {
			b.Fatalf("replay: %+v, connections %+v", rep.Requests, rep.Connections)
		}
		rps := float64(rep.Requests.Responses) / (rep.DurationMS / 1000)
		// CPU per request says what each client costs itself, which a
		// loaded machine disturbs far less than the rates.
		h2lUs, repUs := float64(h2lCPU.Microseconds())/float64(n), float64(cpu.Microseconds())/float64(rep.Requests.Responses)
		var h2lRSS int64
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			h2lRSS = ru.Maxrss >> 10
		}
		done := float64(rep.Requests.Responses)
		b.Logf("h2load -c%d -m%d -n%d: %.0f req/s, %.1f µs CPU/req, peak RSS %d MiB; replay --speed max of %d h2c connections × %d streams, %d in flight: %.0f req/s, %.1f µs CPU/req, %.2f reads and %.2f writes/req, peak RSS %d MiB (the test process); ratio %.2f (load %s)",
			conns, streams, n, h2l, h2lUs, h2lRSS, conns, n/conns, conns*streams, rps, repUs, float64(reads)/done, float64(writes)/done, peakRSS()>>20, rps/h2l, loadAverage())
		b.ReportMetric(float64(reads)/done, "replay_reads/req")
		b.ReportMetric(float64(writes)/done, "replay_writes/req")
		b.ReportMetric(h2lUs, "h2load_cpu_µs/req")
		b.ReportMetric(repUs, "replay_cpu_µs/req")
		b.ReportMetric(h2l, "h2load_req/s")
		b.ReportMetric(rps, "replay_req/s")
		b.ReportMetric(rps/h2l, "ratio")
	}
}

// ioCalls returns the read (syscr) or write (syscw) system calls the
// process made so far, from /proc/self/io: how well frames are batched.
func ioCalls(kind string) int64 {
	b, _ := os.ReadFile("/proc/self/io")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, kind+": "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// peakRSS returns the process's peak resident set in bytes (VmHWM).
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
