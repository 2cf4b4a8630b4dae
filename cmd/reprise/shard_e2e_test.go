package main

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/replay"
)

// buildReprise builds the command once for a test that runs it as
// separate processes, as shards on separate machines would.
func buildReprise(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "reprise")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// shardProc is one child process's outcome.
type shardProc struct {
	code           int
	stdout, stderr bytes.Buffer
	ended          time.Time
}

// runShards starts one child per argument list at once and waits for all.
func runShards(t *testing.T, bin string, argss [][]string) []*shardProc {
	t.Helper()
	procs := make([]*shardProc, len(argss))
	var wg sync.WaitGroup
	for i, args := range argss {
		p := &shardProc{}
		procs[i] = p
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			p.ended = time.Now()
			p.code = cmd.ProcessState.ExitCode()
			if err != nil && p.code < 0 {
				t.Errorf("child %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	return procs
}

// The acceptance test of issue 18 on loopback: N = 1, 2 and 4 processes,
// started together with --shard K/N and one --start-at against one shop,
// send what one process sends: the shop sees every session clone exactly
// once (its logins and sessions), the same requests per route, no request
// out of its session's order; the merged report counts what the single
// run counts, with the same p50 and p99 within loopback's noise.
func TestShardsAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the command as processes")
	}
	bin := buildReprise(t)
	rec := filepath.Join("..", "..", "fixtures", "testdata", "shop.rpz")
	dir := t.TempDir()
	creds := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(creds, []byte("user,password\nstaging-user,shop-demo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"replay", rec, "--speed", "2", "--scale", "3", "--credentials", creds, "--progress", "0"}

	single := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
	singleJSON := filepath.Join(dir, "single.json")
	p := runShards(t, bin, [][]string{append(common, "--target", single.URL(), "--report", singleJSON)})[0]
	if p.code != exitOK {
		t.Fatalf("single run: exit %d\n%s", p.code, p.stderr.String())
	}
	want := single.Stats()
	wantRep := readRun(t, singleJSON)
	if want.Logins != 51 || want.Sessions != 51 {
		t.Fatalf("single run: the shop saw %d logins, %d sessions; want the recording's 17 sessions times 3", want.Logins, want.Sessions)
	}

	for _, n := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			srv := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
			startAt := time.Now().Add(2 * time.Second).UTC()
			var argss [][]string
			var reports []string
			for k := range n {
				out := filepath.Join(t.TempDir(), fmt.Sprintf("shard-%d.json", k))
				reports = append(reports, out)
				argss = append(argss, append(common, "--target", srv.URL(), "--shard", fmt.Sprintf("%d/%d", k, n),
					"--start-at", startAt.Format(time.RFC3339Nano), "--report", out))
			}
			var shardReps []*replay.Report
			for k, p := range runShards(t, bin, argss) {
				if p.code != exitOK {
					t.Fatalf("shard %d/%d: exit %d\n%s", k, n, p.code, p.stderr.String())
				}
				rep := readRun(t, reports[k])
				shardReps = append(shardReps, rep)
				if rep.Start.Before(startAt) || rep.StartLateMS > 500 {
					t.Errorf("shard %d/%d started at %v, %vms after the start instant %v", k, n, rep.Start, rep.StartLateMS, startAt)
				}
			}
			got := srv.Stats()
			if got.Logins != want.Logins || got.Sessions != want.Sessions {
				t.Errorf("the shop saw %d logins and %d sessions; the single run %d and %d", got.Logins, got.Sessions, want.Logins, want.Sessions)
			}
			if fmt.Sprint(got.Routes) != fmt.Sprint(want.Routes) {
				t.Errorf("per route %v\nsingle run %v", got.Routes, want.Routes)
			}
			// The recording's three refused requests are sent as recorded,
			// per clone; nothing else may offend the shop.
			if got.Violations != want.Violations {
				t.Errorf("shop violations %+v; the single run's %+v", got.Violations, want.Violations)
			}
			merged := filepath.Join(t.TempDir(), "run.json")
			runOK(t, append([]string{"report", "merge", "-o", merged}, reports...)...)
			m := readRun(t, merged)
			if m.Requests != wantRep.Requests || fmt.Sprint(m.StatusCodes) != fmt.Sprint(wantRep.StatusCodes) || m.Sessions != wantRep.Sessions {
				t.Errorf("merged requests %+v statuses %v sessions %+v\nsingle run %+v %v %+v", m.Requests, m.StatusCodes, m.Sessions,
					wantRep.Requests, wantRep.StatusCodes, wantRep.Sessions)
			}
			if m.Latency.Count != wantRep.Latency.Count {
				t.Errorf("merged latency count %d, single run %d", m.Latency.Count, wantRep.Latency.Count)
			}
			// Loopback latencies are a millisecond or two, but the tail of
			// N processes on a shared two-core machine moves by hundreds
			// (two single runs in a row measured p99 19ms and 166ms): p99
			// is held to loose bounds here, and to the shards' own (the
			// merged p99 of one histogram lies between theirs). That the
			// merge is exact is TestMergeReports' (package replay) to show.
			lo, hi := math.Inf(1), 0.0
			for _, r := range shardReps {
				if r.Latency.Count > 0 {
					lo, hi = min(lo, r.Latency.P99), max(hi, r.Latency.P99)
				}
			}
			if m.Latency.P99 < lo || m.Latency.P99 > hi {
				t.Errorf("merged p99 %vms outside the shards' p99s %v..%vms", m.Latency.P99, lo, hi)
			}
			if d := math.Abs(m.Latency.P50 - wantRep.Latency.P50); d > 5+wantRep.Latency.P50 {
				t.Errorf("merged p50 %vms, single run %vms", m.Latency.P50, wantRep.Latency.P50)
			}
			if d := math.Abs(m.Latency.P99 - wantRep.Latency.P99); d > 1000 {
				t.Errorf("merged p99 %vms, single run %vms", m.Latency.P99, wantRep.Latency.P99)
			}
			// One schedule on one clock: the requests due in each second
			// are the single run's (a float sum, hence the half). Sends
			// follow it unless the machine stalls a process, which moves a
			// burst's requests across a second's boundary: they are held
			// to a wider margin.
			for i := range max(len(m.Series), len(wantRep.Series)) {
				g, w := intended(m.Series, i), intended(wantRep.Series, i)
				if math.Abs(g-w) > 0.5 {
					t.Errorf("second %d: %v requests due merged, %v in the single run", i, g, w)
				}
			}
			for i := range max(len(m.PerSecond), len(wantRep.PerSecond)) {
				g, w := at(m.PerSecond, i), at(wantRep.PerSecond, i)
				if tol := max(50, w/5); g > w+tol || w > g+tol {
					t.Errorf("second %d: %d sends merged, %d in the single run", i, g, w)
				}
			}
			if total := sum(m.PerSecond); total != m.Requests.Sent {
				t.Errorf("merged per-second sends add to %d, sent %d", total, m.Requests.Sent)
			}
			t.Logf("N=%d: merged p50 %.2fms p99 %.2fms (single %.2f %.2f); per second %v (single %v)", n,
				m.Latency.P50, m.Latency.P99, wantRep.Latency.P50, wantRep.Latency.P99, m.PerSecond, wantRep.PerSecond)
		})
	}
}

func intended(xs []replay.Second, i int) float64 {
	if i < len(xs) {
		return xs[i].Intended
	}
	return 0
}

func at(xs []uint64, i int) uint64 {
	if i < len(xs) {
		return xs[i]
	}
	return 0
}

func sum(xs []uint64) uint64 {
	var s uint64
	for _, x := range xs {
		s += x
	}
	return s
}

// A guard trip in one shard, its target dead: that shard exits 3 within
// the guard's window of the start instant.
func TestShardGuardTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the command as a process")
	}
	bin := buildReprise(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	rec := loginRecording(t, 400, 40, "")
	const window = 2 * time.Second
	startAt := time.Now().Add(time.Second).UTC()
	out := filepath.Join(t.TempDir(), "shard.json")
	p := runShards(t, bin, [][]string{{"replay", rec, "--target", dead, "--shard", "0/2", "--start-at", startAt.Format(time.RFC3339Nano),
		"--abort-on", "error_rate>20%", "--abort-window", window.String(), "--drain-timeout", "1s", "--progress", "0", "--report", out}})[0]
	if p.code != exitGuard {
		t.Fatalf("exit %d, want %d\n%s", p.code, exitGuard, p.stderr.String())
	}
	if took := p.ended.Sub(startAt); took > window+2*time.Second {
		t.Errorf("the shard exited %v after the start, want within the %v window (and the drain)", took, window)
	}
	rep := readRun(t, out)
	if rep.Abort == nil || rep.Abort.Kind != replay.AbortGuard || rep.Shard == nil || rep.Shard.N != 2 {
		t.Errorf("report's abort %+v shard %+v", rep.Abort, rep.Shard)
	}
}
