//go:build linux

package replay

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
)

// BenchmarkNginx is the acceptance benchmark: Debian's nginx
// (apt-get install nginx-light) on 127.0.0.1 with a configuration of its
// own in a temporary directory, three locations, each recorded through
// the recording proxy with wrk as the client and replayed by the reprise
// binary (built once, run as a child process so that its CPU time and
// peak RSS are its own) with --speed max --max-inflight 64, beside
// wrk -t2 -c64 in alternating rounds:
//
//   - json: {"ok":true,"id":"$request_id"}, a per-response id nobody
//     carries back (the correlation plan learns nothing from it);
//   - static: a 3.4 KB file;
//   - flow: POST /login answers {"token":"tok-$request_id"} and GET /api
//     wants "Authorization: Bearer tok-<32 hex>", else 401; wrk's script
//     sends each thread's latest token, the replay the live one it
//     learned.
//
// Each location is recorded by wrk with one thread per connection
// (-t64 -c64), each thread stopping after as many exchanges as the others
// (recordPerConn per second of REPRISE_NGINX_SECS, in twice that time at
// most), and the bench logs the spread. Both make the comparison the
// same requests on as many connections:
//
//   - A replay at --speed max keeps each recorded connection's order, so
//     its length is the longest connection's: recorded by two threads
//     through the proxy, connections carried up to 1.8 times the
//     median's exchanges (flow; static 1.5 on a loaded machine), and the
//     replay ran its last part on fewer and fewer connections while wrk
//     keeps 64 busy to its end.
//   - The flow's script sends its thread's latest token: recorded with
//     -t2, 32 connections shared it, four in five requests carried a
//     token another connection's login issued, and the replay, which
//     keeps that order (a request waits for the response that issued
//     its value), was measured against a wrk that waits for none. With a
//     thread per connection each connection carries its own logins'
//     tokens, as a user's client does.
//
// wrk is measured as the issue has it, -t2 -c64, without the recording's
// stop (the json and static locations without a script at all, which
// would cost wrk a Lua call per response): never waiting, 64 connections
// busy to its end.
//
// Each round logs the ratio of the replay's responses per second (over
// its whole run, reading the recording included) to wrk's, the CPU µs
// per request of the client (getrusage of the child for the replay and
// for wrk) and of nginx (/proc/PID/stat of its processes), and each
// client's peak RSS (ru_maxrss). It reports the median ratio per
// location. The targets: median ratio ≥ 0.85 on each, peak RSS
// ≤ 64 MiB.
//
// Each round also runs the floor client (testdata/floorclient) on the
// same recording: a Go client that sends the recorded requests in each
// connection's order and reads the responses with the replay's parser,
// and does nothing else. Its conns mode (a goroutine per connection on
// net.Conn, as the replay's engine and net/http are built) is the most
// a Go client of that shape reaches on this machine beside this nginx;
// its epoll mode (a loop per CPU on raw epoll, wrk's shape) is the most
// an event-loop engine would. Each runs twice: with the requests read
// into memory before the run (conns, epoll), and reading the recording
// while it runs, as a replay must (conns_read, epoll_read). Their ratios
// to wrk are logged each round and reported as floor_<name>_ratio. On
// flow the floor sends the recorded tokens, which the proxy hashed: nginx
// refuses three requests in four (401), which the log counts as not 2xx;
// its CPU per request is logged beside wrk's to show that the refusal
// costs it about what an answer does.
//
//	go test ./replay -run '^$' -bench Nginx -benchtime 1x
//
// REPRISE_NGINX_ROUNDS (default 5) and REPRISE_NGINX_SECS (default 3, the
// wrk run's length and the recording's) shorten it for a smoke run;
// REPRISE_NGINX_DIR keeps the recordings, the binary and nginx's
// configuration in that directory instead of a temporary one.
func BenchmarkNginx(b *testing.B) {
	nginxBin := lookNginx()
	if nginxBin == "" {
		b.Skip("nginx not installed (apt-get install -y nginx-light)")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk not installed (apt-get install -y wrk)")
	}
	rounds, secs := envInt("REPRISE_NGINX_ROUNDS", 5), envInt("REPRISE_NGINX_SECS", 3)
	dir := b.TempDir()
	if keep := os.Getenv("REPRISE_NGINX_DIR"); keep != "" {
		dir = keep // the recordings, the binary and nginx's configuration stay, to profile by hand
	}
	bin := buildReprise(b, dir)
	floor := buildFloorClient(b, dir)
	ng := startBenchNginx(b, nginxBin, dir)
	for _, loc := range nginxLocations {
		b.Run(loc.name, func(b *testing.B) {
			rec := recordThroughProxy(b, ng, dir, loc, secs)
			for i := 0; i < b.N; i++ {
				var ratios []float64
				floors := map[string][]float64{}
				for round := 1; round <= rounds; round++ {
					w := runWrk(b, ng, dir, loc, secs)
					r := runReplay(b, ng, bin, rec)
					ratio := r.rps / w.rps
					ratios = append(ratios, ratio)
					line := fmt.Sprintf("%s round %d: wrk %.0f req/s, replay %d responses in %.0fms = %.0f req/s, ratio %.2f; CPU µs/req: wrk %.1f + nginx %.1f, replay %.1f + nginx %.1f; peak RSS: wrk %.1f MiB, replay %.1f MiB; %s; floor clients:",
						loc.name, round, w.rps, r.responses, r.ms, r.rps, ratio, w.cpuPerReq, w.nginxPerReq, r.cpuPerReq, r.nginxPerReq, w.rssMiB, r.rssMiB, r.note)
					for _, fl := range floorModes {
						f := runFloor(b, ng, floor, rec, fl)
						floors[fl.name] = append(floors[fl.name], f.rps/w.rps)
						line += fmt.Sprintf(" %s %.0f req/s, ratio %.2f, CPU µs/req %.1f + nginx %.1f%s;", fl.name, f.rps, f.rps/w.rps, f.cpuPerReq, f.nginxPerReq, f.note)
					}
					// One line a round: a benchmark's log is cut after ten lines.
					b.Log(strings.TrimSuffix(line, ";"))
				}
				b.ReportMetric(median(ratios), "median_ratio")
				for _, fl := range floorModes {
					b.ReportMetric(median(floors[fl.name]), "floor_"+fl.name+"_ratio")
				}
			}
		})
	}
}

// floorMode is one of the floor client's runs in each round (see
// BenchmarkNginx).
type floorMode struct {
	name   string
	mode   string // conns or epoll
	stream bool   // read the recording while running
}

var floorModes = []floorMode{
	{"conns", "conns", false},
	{"epoll", "epoll", false},
	{"conns_read", "conns", true},
	{"epoll_read", "epoll", true},
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// nginxLocation is one of the benchmark's three workloads.
type nginxLocation struct {
	name string
	path string // what wrk requests, or its script's first request
	lua  string // a wrk script, for the token flow; it takes recordStop's argument
}

// recordPerConn is the exchanges each recorded connection stops after,
// per second of the recording (see BenchmarkNginx).
const recordPerConn = 200

// recordStop is the recording's script of a location without one: each
// thread (one connection) stops after the count it is given.
const recordStop = `
local n, limit = 0, nil
init = function(args) limit = tonumber(args[1]) end
response = function()
  n = n + 1
  if limit and n >= limit then wrk.thread:stop() end
end
`

var nginxLocations = []nginxLocation{
	{name: "json", path: "/json"},
	{name: "static", path: "/static.json"},
	{name: "flow", path: "/login", lua: `
local token = nil
local n = 0
local limit = nil
init = function(args) limit = tonumber(args[1]) end
request = function()
  n = n + 1
  if token == nil or n % 4 == 1 then
    return wrk.format("POST", "/login", {["Content-Type"] = "application/json"}, '{"user":"bench"}')
  end
  return wrk.format("GET", "/api", {["Authorization"] = "Bearer " .. token})
end
response = function(status, headers, body)
  local t = body:match('"token":"(tok%-%x+)"')
  if t then token = t end
  if limit and n >= limit then wrk.thread:stop() end
end
`},
}

// nginxConf answers the three locations on a loopback port, with every
// path in dir: no system configuration, no privileged port.
const nginxConf = `%s
worker_processes 2;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:%[3]d;
    root %[2]s/www;
    location = /json { default_type application/json; return 200 '{"ok":true,"id":"$request_id"}'; }
    location = /static.json { default_type application/json; }
    location = /login { default_type application/json; return 200 '{"token":"tok-$request_id"}'; }
    location = /api {
      default_type application/json;
      if ($http_authorization !~ "^Bearer tok-[0-9a-f]{32}$") { return 401 '{"error":"unauthorized"}'; }
      return 200 '{"ok":true}';
    }
  }
}
`

type nginxProc struct {
	url string
	cmd *exec.Cmd
}

func lookNginx() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startBenchNginx writes the configuration and a 3.4 KB static file to dir and
// runs nginx in the foreground until the benchmark ends. It is not
// testkit.StartNginx, which serves tests: one worker of 64 connections
// with an access log, too few for wrk's 64 and the proxy's besides, and
// a log line per request would weigh on the figures; and the benchmark
// needs the master's pid for nginx's CPU time.
func startBenchNginx(b *testing.B, bin, dir string) *nginxProc {
	b.Helper()
	for _, d := range []string{"www", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	var static strings.Builder
	static.WriteString(`{"items":[`)
	for i := 0; static.Len() < 3400; i++ {
		if i > 0 {
			static.WriteString(",")
		}
		fmt.Fprintf(&static, `{"sku":"SKU-%05d","name":"catalogue item %d","price":%d.99}`, i, i, 10+i)
	}
	static.WriteString("]}")
	if err := os.WriteFile(filepath.Join(dir, "www", "static.json"), []byte(static.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers read the temporary directory, which only root may
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, user, dir, port)), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(syscall.SIGQUIT); cmd.Wait() })
	ng := &nginxProc{url: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := http.Get(ng.url + "/json")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx did not answer: %v\n%s\n%s", err, out.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ng
}

// cpu is the CPU time nginx's processes (the master and its workers)
// have used, from /proc.
func (ng *nginxProc) cpu() time.Duration {
	pid := ng.cmd.Process.Pid
	total := pidCPU(pid)
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, k := range strings.Fields(string(kids)) {
		if n, err := strconv.Atoi(k); err == nil {
			total += pidCPU(n)
		}
	}
	return total
}

// buildReprise builds the command once, so that the replay runs as a
// child process whose CPU time and RSS getrusage tells apart.
func buildReprise(b *testing.B, dir string) string {
	return goBuild(b, dir, "reprise", "github.com/reprise-tool/reprise/cmd/reprise")
}

// goBuild builds pkg into dir/name.
func goBuild(b *testing.B, dir, name, pkg string) string {
	b.Helper()
	bin := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// wrkArgs are wrk's arguments for a location against base: as it is
// measured (-t2, secs), or, with perConn > 0, as it records (see
// BenchmarkNginx): a thread per connection, each stopped by its script
// after perConn exchanges, in twice secs at most.
func wrkArgs(b *testing.B, dir, base string, loc nginxLocation, secs, perConn int) []string {
	threads, d, lua, name := 2, secs, loc.lua, loc.name+".lua"
	if perConn > 0 {
		threads, d, name = 64, 2*secs, loc.name+".record.lua"
		lua = cmp.Or(lua, recordStop)
	}
	args := []string{"-t" + strconv.Itoa(threads), "-c64", "-d" + strconv.Itoa(d) + "s"}
	if lua != "" {
		script := filepath.Join(dir, name)
		if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
			b.Fatal(err)
		}
		args = append(args, "-s", script)
	}
	args = append(args, base+loc.path)
	if perConn > 0 {
		args = append(args, "--", strconv.Itoa(perConn))
	}
	return args
}

// recordThroughProxy records wrk's traffic to the location through the
// recording proxy (capture/proxy, the one recording loop; it stores no
// correlation plan, which the replay's survey computes).
func recordThroughProxy(b *testing.B, ng *nginxProc, dir string, loc nginxLocation, secs int) string {
	b.Helper()
	out := filepath.Join(dir, loc.name+".rpz")
	addr, stop := shoptest.StartRecord(b, proxy.RecordConfig{Upstream: ng.url, Output: out})
	cmd := exec.Command("wrk", wrkArgs(b, dir, "http://"+addr, loc, secs, recordPerConn*secs)...)
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("wrk through the proxy: %v\n%s", err, o)
	}
	sum, err := stop()
	if err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(out)
	b.Logf("%s: recorded %d exchanges through the proxy (%d bytes); exchanges per connection %s",
		loc.name, sum.Exchanges, st.Size(), connSpread(b, out))
	return out
}

// connSpread is the least, median and most exchanges of the recording's
// connections (their connection records, which the survey reads): at
// --speed max the replay keeps each connection's order, so its last part
// runs on the longest connections alone.
func connSpread(b *testing.B, path string) string {
	rd, err := session.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	sv, err := SurveyRecording(context.Background(), rd)
	if err != nil {
		b.Fatal(err)
	}
	var counts []int
	for _, c := range sv.Conns {
		if c.Exchanges > 0 {
			counts = append(counts, c.Exchanges)
		}
	}
	if len(counts) == 0 {
		return "none"
	}
	slices.Sort(counts)
	return fmt.Sprintf("%d min, %d median, %d max", counts[0], counts[len(counts)/2], counts[len(counts)-1])
}

var wrkRequestsPerSec = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// clientRun is one client's round.
type clientRun struct {
	rps, ms                float64
	responses              uint64
	cpuPerReq, nginxPerReq float64
	rssMiB                 float64
	note                   string
}

// usage is a finished child's CPU time (getrusage, by wait4).
func usage(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

// runChild runs cmd to its end and returns its peak RSS in MiB: VmHWM
// from /proc/PID/status, read every 10ms while it runs. A child's
// ru_maxrss is no measure here: Go starts children with vfork, so the
// high-water mark a child reports includes the benchmark's own RSS.
func runChild(cmd *exec.Cmd) (rssMiB float64, err error) {
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	peak := make(chan float64, 1)
	go func() {
		var hwm float64
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if b, err := os.ReadFile(status); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
						hwm = max(hwm, kb/1024)
					}
				}
			}
			select {
			case <-done:
				peak <- hwm
				return
			case <-tick.C:
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	return <-peak, err
}

func runWrk(b *testing.B, ng *nginxProc, dir string, loc nginxLocation, secs int) clientRun {
	b.Helper()
	n0 := ng.cpu()
	cmd := exec.Command("wrk", wrkArgs(b, dir, ng.url, loc, secs, 0)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	rss, err := runChild(cmd)
	out := buf.Bytes()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	nginxCPU := ng.cpu() - n0
	m := wrkRequestsPerSec.FindSubmatch(out)
	if m == nil {
		b.Fatalf("no Requests/sec in wrk's output:\n%s", out)
	}
	rps, _ := strconv.ParseFloat(string(m[1]), 64)
	n := rps * float64(secs)
	cpu := usage(cmd.ProcessState)
	return clientRun{rps: rps, cpuPerReq: us(cpu) / n, nginxPerReq: us(nginxCPU) / n, rssMiB: rss}
}

// buildFloorClient builds the floor client (see BenchmarkNginx).
func buildFloorClient(b *testing.B, dir string) string {
	return goBuild(b, dir, "floorclient", "github.com/reprise-tool/reprise/replay/testdata/floorclient")
}

// runFloor runs the floor client as fl says on rec, measured as runReplay
// measures the replay.
func runFloor(b *testing.B, ng *nginxProc, bin, rec string, fl floorMode) clientRun {
	b.Helper()
	n0 := ng.cpu()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-target", strings.TrimPrefix(ng.url, "http://"), "-mode", fl.mode, "-stream="+strconv.FormatBool(fl.stream), rec)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	rss, err := runChild(cmd)
	if err != nil {
		b.Fatalf("floor client (%s): %v\n%s", fl.name, err, stderr.String())
	}
	nginxCPU := ng.cpu() - n0
	var out struct {
		Responses  uint64  `json:"responses"`
		Not2xx     uint64  `json:"not_2xx"`
		DurationMS float64 `json:"duration_ms"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		b.Fatalf("floor client's output: %v\n%s", err, stdout.String())
	}
	n := float64(out.Responses)
	run := clientRun{rps: n / (out.DurationMS / 1000), ms: out.DurationMS, responses: out.Responses,
		cpuPerReq: us(usage(cmd.ProcessState)) / n, nginxPerReq: us(nginxCPU) / n, rssMiB: rss}
	if out.Not2xx > 0 {
		// flow's recorded tokens are hashed: sent as recorded, they are refused
		run.note = fmt.Sprintf(", %d not 2xx", out.Not2xx)
	}
	return run
}

func runReplay(b *testing.B, ng *nginxProc, bin, rec string) clientRun {
	b.Helper()
	n0 := ng.cpu()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "replay", rec, "--target", ng.url, "--speed", "max", "--max-inflight", "64",
		"--session-keys", "connection", "--allow-original-host", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	rss, err := runChild(cmd)
	if err != nil {
		b.Fatalf("replay: %v\n%s", err, stderr.String())
	}
	nginxCPU := ng.cpu() - n0
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		b.Fatalf("replay's report: %v\n%s", err, stderr.String())
	}
	if !rep.Completed || rep.Requests.Errors > 0 {
		b.Fatalf("replay: %+v %s", rep.Requests, rep.Failure)
	}
	n := float64(rep.Requests.Responses)
	cpu := usage(cmd.ProcessState)
	note := fmt.Sprintf("status %s, %d learned, %d substituted", FormatCounts(rep.StatusCodes), rep.Correlation.Learned, rep.Correlation.Substituted)
	if p := rep.Plan; p != nil {
		note += fmt.Sprintf(", plan %d rules, %d bodies dropped", p.Rules, p.Memory.BodiesDropped)
	}
	return clientRun{rps: n / (rep.DurationMS / 1000), ms: rep.DurationMS, responses: rep.Requests.Responses,
		cpuPerReq: us(cpu) / n, nginxPerReq: us(nginxCPU) / n, rssMiB: rss, note: note}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
