package replay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// trivialServerEnv makes the test binary a trivial HTTP server (see
// TestMain), so that wrk and the replay measure against the same server in
// its own process, not sharing the replay's runtime.
const trivialServerEnv = "REPRISE_TRIVIAL_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(trivialServerEnv) != "" {
		serveTrivial()
		return
	}
	os.Exit(m.Run())
}

// serveTrivial answers "ok" on a loopback port, prints the address, and
// exits when its stdin closes or after ten minutes.
func serveTrivial() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	go func() {
		time.Sleep(10 * time.Minute)
		os.Exit(0)
	}()
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	}))
}

// startTrivial starts the trivial server in a child process.
func startTrivial(tb testing.TB) string {
	tb.Helper()
	addr, _ := startTrivialProc(tb)
	return addr
}

// startTrivialProc is startTrivial that also returns the server's pid.
func startTrivialProc(tb testing.TB) (string, int) {
	tb.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), trivialServerEnv+"=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.HasPrefix(addr, "error") {
		tb.Fatalf("trivial server: %v %s", err, addr)
	}
	return "http://" + strings.TrimSpace(addr), cmd.Process.Pid
}

// flatSource is the recording of what wrk -c conns does against the
// trivial server: conns sessions (one per connection) of sequential
// GET /, n exchanges in all, with the response header fields and body
// that server sends, so that the replay does per request what it does on
// a real recording (the recorded response is searched for values to
// learn). It makes each exchange as it is read, as a recording's reader
// does, so that the replay's heap holds the look-ahead window and not the
// whole recording.
type flatSource struct {
	conns, n, i int
}

var (
	flatRequestHeader  = session.Headers{{Name: "Host", Value: "x"}, {Name: "User-Agent", Value: "bench"}}
	flatResponseHeader = session.Headers{
		{Name: "Content-Type", Value: "text/plain"},
		{Name: "Date", Value: "Thu, 26 Nov 2026 02:00:00 GMT"},
		{Name: "Content-Length", Value: "2"},
	}
)

func (s *flatSource) Next() (*session.Exchange, error) {
	if s.i == s.n {
		return nil, io.EOF
	}
	c, k := s.i%s.conns, s.i/s.conns
	s.i++
	at := t0 + int64(k)*1e6 + int64(c)*1e3
	return &session.Exchange{
		Conn:     session.Conn{ID: uint64(c)},
		Index:    k,
		Request:  session.Request{Method: "GET", Target: "/", Proto: "HTTP/1.1", Header: flatRequestHeader},
		Response: session.Response{Status: 200, Proto: "HTTP/1.1", Body: []byte("ok"), BodySize: 2, Header: flatResponseHeader},
		Timing:   session.Timing{RequestStart: at, RequestEnd: at, ResponseStart: at + 5e5, ResponseEnd: at + 5e5},
	}, nil
}

var wrkRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// BenchmarkVersusWrk measures `--speed max` against wrk, side by side in
// one run. The trivial Go server runs in its own process (a child of the
// test binary), the same one for both, so neither client shares its
// runtime with the server. Each round runs wrk -t2 -c64 -d3s, then
// replays, with --speed max and 64 in flight (wrk's -c64), a recording
// of 64 sessions of sequential GET / (what wrk's 64 connections do, each
// its own session, so that the order rules allow 64 in flight) holding as
// many requests as wrk made, with the response fields and body that
// server sends. The replay does all its usual work per request: session
// order, live-value learning and substitution, HDR histograms overall
// and per route, and its throughput is responses over the whole run,
// from the start of Run (reading the recording into the look-ahead
// window included) to the last response. wrk's requests carry only Host;
// the replay's carry Host and User-Agent as recorded.
//
// The machine is shared, so the two alternate over five short rounds and
// the median of the five ratios is reported, with the load average
// logged each round (the target: a ratio of at least 0.70). Run
// it alone:
//
//	go test ./replay -run '^$' -bench VersusWrk -benchtime 1x
func BenchmarkVersusWrk(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk not installed")
	}
	const secs = 3
	target, pid := startTrivialProc(b)
	for i := 0; i < b.N; i++ {
		var ratios, wrks, rpss []float64
		for round := 0; round < 5; round++ {
			srv0 := pidCPU(pid)
			wcmd := exec.Command("wrk", "-t2", "-c64", "-d"+strconv.Itoa(secs)+"s", target+"/")
			out, err := wcmd.CombinedOutput()
			srvWrk := pidCPU(pid) - srv0
			if err != nil {
				b.Fatalf("wrk: %v\n%s", err, out)
			}
			wrkCPU := wcmd.ProcessState.UserTime() + wcmd.ProcessState.SystemTime()
			m := wrkRPS.FindSubmatch(out)
			if m == nil {
				b.Fatalf("no Requests/sec in wrk's output:\n%s", out)
			}
			wrk, _ := strconv.ParseFloat(string(m[1]), 64)
			r, err := New(target, WithPacer(Max{}), WithMaxInFlight(64))
			if err != nil {
				b.Fatal(err)
			}
			srv0, cpu0 := pidCPU(pid), testkit.CPUTime()
			rep, err := r.Run(context.Background(), &flatSource{conns: 64, n: int(wrk * secs)})
			srvRep, repCPU := pidCPU(pid)-srv0, testkit.CPUTime()-cpu0
			if err != nil {
				b.Fatal(err)
			}
			if rep.Requests.Errors > 0 || !rep.Completed {
				b.Fatalf("replay: %+v %s", rep.Requests, rep.Failure)
			}
			rps := float64(rep.Requests.Responses) / (rep.DurationMS / 1000)
			b.Logf("round %d (load %s): wrk -t2 -c64 -d%ds %.0f req/s; replay --speed max --max-inflight 64: %d requests in %.0fms = %.0f req/s (service p50 %.2fms); ratio %.2f",
				round+1, loadAverage(), secs, wrk, rep.Requests.Responses, rep.DurationMS, rps, rep.ServiceTime.P50, rps/wrk)
			perReq := func(d time.Duration, n float64) float64 { return float64(d.Microseconds()) / n }
			b.Logf("  CPU µs per request: wrk %.1f + server %.1f; replay %.1f + server %.1f",
				perReq(wrkCPU, wrk*secs), perReq(srvWrk, wrk*secs), perReq(repCPU, float64(rep.Requests.Responses)), perReq(srvRep, float64(rep.Requests.Responses)))
			ratios, wrks, rpss = append(ratios, rps/wrk), append(wrks, wrk), append(rpss, rps)
		}
		med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
		b.ReportMetric(med(wrks), "wrk_req/s")
		b.ReportMetric(med(rpss), "replay_req/s")
		b.ReportMetric(med(ratios), "ratio")
	}
}

// loadAverage is the machine's 1-minute load average where /proc tells
// it, "?" elsewhere.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// BenchmarkReplayMax is the engine's cost per request at --speed max
// against the trivial server in its own process. Besides wall time it
// reports cpu_µs/op, the replay process's own CPU time (user and system)
// per request, which a shared machine's load disturbs far less:
//
//	go test ./replay -run '^$' -bench ReplayMax -benchtime 200000x -count 3
func BenchmarkReplayMax(b *testing.B) {
	target := startTrivial(b)
	src := &flatSource{conns: 64, n: b.N}
	r, err := New(target, WithPacer(Max{}), WithMaxInFlight(64))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := testkit.CPUTime()
	rep, err := r.Run(context.Background(), src)
	cpu = testkit.CPUTime() - cpu
	if err != nil || rep.Requests.Errors > 0 {
		b.Fatalf("%v %+v", err, rep.Requests)
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu_µs/op")
}

// BenchmarkWireFloor is the floor under BenchmarkReplayMax: the same
// requests on 64 goroutines that do nothing but the wire client's
// exchange, one connection each, as wrk's 64 connections. Its cpu_µs/op
// is what a goroutine per connection costs in Go; ReplayMax's excess over
// it is the engine's own work per request (schedule, order, learning,
// measuring). srv_µs/op is the trivial server's CPU per request.
//
//	go test ./replay -run '^$' -bench 'WireFloor|ReplayMax' -benchtime 200000x
func BenchmarkWireFloor(b *testing.B) {
	target, pid := startTrivialProc(b)
	w := newWireClient(strings.TrimPrefix(target, "http://"), nil, time.Second, 10*time.Second, 64)
	req := &wireRequest{Method: "GET", Target: "/", Host: "x", Header: flatRequestHeader[1:]}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	srv0, cpu0, t0 := pidCPU(pid), testkit.CPUTime(), time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held *wireConn // each goroutine keeps its connection, as a chain does
			for next.Add(1) <= int64(b.N) {
				if _, _, err := w.doOn(context.Background(), req, &held); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	w.closeAll()
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(float64((testkit.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu_µs/op")
	b.ReportMetric(float64((pidCPU(pid)-srv0).Microseconds())/float64(b.N), "srv_µs/op")
}

// BenchmarkSchedule measures the scheduler's own precision at 1x: 2,000
// requests at 2,000 per second from 100 connections, against the trivial
// server; it reports the p50 and p99 lag (send - due) from the report.
func BenchmarkSchedule(b *testing.B) {
	target := startTrivial(b)
	for i := 0; i < b.N; i++ {
		src := &session.SliceSource{}
		for j := 0; j < 2000; j++ {
			at := t0 + int64(j)*5e5
			src.Exchanges = append(src.Exchanges, &session.Exchange{
				Conn:     session.Conn{ID: uint64(j % 100)},
				Request:  session.Request{Method: "GET", Target: "/", Proto: "HTTP/1.1"},
				Response: session.Response{Status: 200},
				Timing:   session.Timing{RequestStart: at, RequestEnd: at, ResponseStart: at + 1e5, ResponseEnd: at + 1e5},
			})
		}
		r, _ := New(target)
		rep, err := r.Run(context.Background(), src)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.Lag.P50*1000, "lag_p50_µs")
		b.ReportMetric(rep.Lag.P99*1000, "lag_p99_µs")
	}
}

// genSource makes n exchanges on the fly, one every 100µs over 50
// connections, so that nothing but the replay holds them.
type genSource struct{ i, n int }

func (g *genSource) Next() (*session.Exchange, error) {
	if g.i == g.n {
		return nil, io.EOF
	}
	at := t0 + int64(g.i)*1e5
	g.i++
	return &session.Exchange{
		Conn:     session.Conn{ID: uint64(g.i % 50)},
		Request:  session.Request{Method: "GET", Target: "/item/" + strconv.Itoa(g.i), Proto: "HTTP/1.1", Header: session.Headers{{Name: "User-Agent", Value: "gen"}}},
		Response: session.Response{Status: 200, Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"id":` + strconv.Itoa(g.i) + `,"name":"an item of the catalogue"}`)},
		Timing:   session.Timing{RequestStart: at, RequestEnd: at, ResponseStart: at + 5e4, ResponseEnd: at + 5e4},
	}, nil
}

// BenchmarkMemory replays recordings of 50 000 and 200 000 exchanges
// (the same 50 connections) at --speed max and reports the peak live heap
// (as of each garbage collection, sampled every 10ms): it is set by the
// look-ahead window, the requests pending and the sessions' live-value
// tables (at most 1024 values each), not by the recording's length.
//
//	go test ./replay -run '^$' -bench Memory -benchtime 1x
func BenchmarkMemory(b *testing.B) {
	target := startTrivial(b)
	for _, n := range []int{50_000, 200_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runtime.GC()
				var peak uint64
				var all []float64
				sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					for {
						select {
						case <-stop:
							return
						case <-time.After(10 * time.Millisecond):
						}
						metrics.Read(sample)
						peak = max(peak, sample[0].Value.Uint64())
						all = append(all, float64(sample[0].Value.Uint64())/(1<<20))
					}
				}()
				r, _ := New(target, WithPacer(Max{}), WithWindow(time.Second))
				rep, err := r.Run(context.Background(), &genSource{n: n})
				close(stop)
				<-done
				if err != nil || rep.Requests.Responses != uint64(n) {
					b.Fatalf("%v %+v", err, rep.Requests)
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak_live_heap_MB")
				if len(all) > 0 {
					slices.Sort(all)
					b.ReportMetric(all[len(all)/2], "median_live_heap_MB")
				}
			}
		})
	}
}
