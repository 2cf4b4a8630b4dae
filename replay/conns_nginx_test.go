//go:build linux

package replay

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// nginx is Debian's nginx serving on loopback with an access log of
// $connection $connection_requests $msec $request_time $request_uri: the
// target's own view of the connections a replay opened.
type nginx struct {
	url string
	log string
}

// startNginx starts nginx for the test (testkit.StartNginx), or skips it
// when nginx is not installed (apt-get install nginx-light, as .ci/setup
// does).
func startNginx(t *testing.T) *nginx {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	testkit.StartNginx(t, dir, addr, fmt.Sprintf(`keepalive_timeout 75s;
	keepalive_requests 100000;
	server {
		listen %s;
		location / { return 200 "ok\n"; }
		location = /chromium/index.html { default_type text/html; return 200 '%s'; }
	}`, addr, chromiumPage), "$connection $connection_requests $msec $request_time $request_uri")
	return &nginx{url: "http://" + addr, log: filepath.Join(dir, "access.log")}
}

// logLine is one access log entry.
type logLine struct {
	conn, nth uint64
	at        time.Time // the request's start: $msec less $request_time
	uri       string
}

// since returns the log's entries from byte offset from on, and the end.
func (n *nginx) since(t *testing.T, from int64) ([]logLine, int64) {
	t.Helper()
	f, err := os.Open(n.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	end, _ := f.Seek(0, io.SeekEnd)
	f.Seek(from, io.SeekStart)
	var out []logLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 5 {
			t.Fatalf("log line %q", sc.Text())
		}
		c, _ := strconv.ParseUint(fs[0], 10, 64)
		k, _ := strconv.ParseUint(fs[1], 10, 64)
		msec, _ := strconv.ParseFloat(fs[2], 64)
		rt, _ := strconv.ParseFloat(fs[3], 64)
		at := time.UnixMicro(int64((msec - rt) * 1e6))
		out = append(out, logLine{conn: c, nth: k, at: at, uri: fs[4]})
	}
	return out, end
}

// size is the log's length now.
func (n *nginx) size() int64 {
	st, err := os.Stat(n.log)
	if err != nil {
		return 0
	}
	return st.Size()
}

// perConn returns the requests per connection, sorted.
func perConn(lines []logLine) []int {
	m := map[uint64]int{}
	for _, l := range lines {
		m[l.conn]++
	}
	out := make([]int, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

// recordedPerConn returns the recording's requests per connection, sorted.
func recordedPerConn(exs []*session.Exchange) []int {
	m := map[uint64]int{}
	for _, ex := range exs {
		m[ex.Conn.ID]++
	}
	out := make([]int, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

// record runs clients through a recording proxy in front of upstream and
// returns the exchanges, in the order the proxy finished them.
func record(t *testing.T, upstream string, clients func(base string)) []*session.Exchange {
	t.Helper()
	exs, _ := recordConns(t, upstream, clients)
	return exs
}

// recordConns is record, returning the proxy's connection records too.
func recordConns(t *testing.T, upstream string, clients func(base string)) ([]*session.Exchange, []session.ConnInfo) {
	t.Helper()
	p, err := proxy.New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, served, err := p.Start(ctx, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	var exs []*session.Exchange
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			ex, err := p.Next()
			if err != nil {
				return
			}
			exs = append(exs, ex)
		}
	}()
	t0 := time.Now()
	clients("http://" + addr)
	t.Logf("clients done in %v", time.Since(t0))
	cancel()
	served()
	<-read
	t.Logf("recorded in %v", time.Since(t0))
	return exs, p.TakeConns()
}

// keepAlive returns a client with one kept-alive connection of its own.
func keepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}}
}

// discardResponse reads one response and its body from br; it reports an
// error on t and returns false when there is none.
func discardResponse(t *testing.T, br *bufio.Reader) bool {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Error(err)
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}

// keptAlive runs n clients at once, client i calling each(i, c) with a
// kept-alive connection of its own, and waits for them all.
func keptAlive(n int, each func(i int, c *http.Client)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := keepAlive()
			defer c.CloseIdleConnections()
			each(i, c)
		}()
	}
	wg.Wait()
}

func get(t *testing.T, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		t.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// pacedClients is 24 kept-alive clients, each on its own connection,
// each sending a request every 25ms.
func pacedClients(t *testing.T) func(base string) {
	return func(base string) {
		keptAlive(24, func(i int, c *http.Client) {
			time.Sleep(time.Duration(i) * time.Millisecond)
			for k := range 8 {
				get(t, c, fmt.Sprintf("%s/paced/%d/%d", base, i, k))
				time.Sleep(25 * time.Millisecond)
			}
		})
	}
}

// replayed replays exs at speed and returns what nginx logged of it, the
// report and the due time of each request-target.
func replayed(t *testing.T, n *nginx, exs []*session.Exchange, opts ...Option) ([]logLine, *Report, map[string]time.Time) {
	lines, rep, dues := replayedSpan(t, n, exs, "", opts...)
	return lines, rep, dues.m
}

// replayedSpan is replayed, measuring the span of the targets under span.
func replayedSpan(t *testing.T, n *nginx, exs []*session.Exchange, span string, opts ...Option) ([]logLine, *Report, *dueLog) {
	t.Helper()
	return replayedSpans(t, n, exs, []string{span}, opts...)
}

// replayedSpans is replayedSpan with more spans: the first as
// replayedSpan's, the others' first send and last response in the
// dueLog's also.
func replayedSpans(t *testing.T, n *nginx, exs []*session.Exchange, spans []string, opts ...Option) ([]logLine, *Report, *dueLog) {
	t.Helper()
	span := spans[0]
	// nginx logs a request after its response went out: let the lines
	// of what came before settle first.
	time.Sleep(100 * time.Millisecond)
	from := n.size()
	dues := &dueLog{m: map[string]time.Time{}, span: span, sent: map[string]time.Time{}, done: map[string]time.Time{}, also: map[string]*[2]time.Time{}}
	for _, p := range spans[1:] {
		dues.also[p] = &[2]time.Time{}
	}
	rep := run(t, n.url, source(exs...), append(opts, WithObserver(dues))...)
	if !rep.Completed {
		var b strings.Builder
		rep.WriteSummary(&b)
		t.Fatalf("replay did not complete:\n%s", b.String())
	}
	time.Sleep(50 * time.Millisecond) // nginx logs as the response ends
	lines, _ := n.since(t, from)
	return lines, rep, dues
}

// dueLog keeps each request-target's due time, and the span from the
// first send to the last response of the targets under span.
type dueLog struct {
	mu         sync.Mutex
	m          map[string]time.Time
	span       string
	first, end time.Time
	sent, done map[string]time.Time     // of the targets under span
	also       map[string]*[2]time.Time // more spans: first send, last response
}

func (d *dueLog) Observe(r *Result) {
	d.mu.Lock()
	d.m[r.Target] = r.Due
	if d.span != "" && strings.HasPrefix(r.Target, d.span) && !r.Sent.IsZero() {
		if d.first.IsZero() || r.Sent.Before(d.first) {
			d.first = r.Sent
		}
		if r.Done.After(d.end) {
			d.end = r.Done
		}
		d.sent[r.Target], d.done[r.Target] = r.Sent, r.Done
	}
	for p, fe := range d.also {
		if strings.HasPrefix(r.Target, p) && !r.Sent.IsZero() {
			if fe[0].IsZero() || r.Sent.Before(fe[0]) {
				fe[0] = r.Sent
			}
			if r.Done.After(fe[1]) {
				fe[1] = r.Done
			}
		}
	}
	d.mu.Unlock()
}

// A paced recording of 24 kept-alive clients reaches nginx on 24
// connections at 1x and at 10x, each carrying the requests its recorded
// connection carried.
func TestNginxConnectionsPaced(t *testing.T) {
	n := startNginx(t)
	exs := record(t, n.url, pacedClients(t))
	want := recordedPerConn(exs)
	if len(want) != 24 || len(exs) != 24*8 {
		t.Fatalf("recorded %d exchanges on %d connections, want 192 on 24", len(exs), len(want))
	}
	for _, speed := range []float64{1, 10} {
		t.Run(fmt.Sprintf("%gx", speed), func(t *testing.T) {
			lines, rep, dues := replayed(t, n, exs, WithPacer(Speed(speed)))
			if got := perConn(lines); !slices.Equal(got, want) {
				t.Errorf("nginx saw requests per connection %v, recorded %v", got, want)
			}
			if c := rep.Connections; c == nil || c.Mode != ConnectionsRecorded || c.Opened != 24 {
				t.Errorf("connections report %+v, want 24 opened, recorded", c)
			}
			logTiming(t, lines, dues, map[float64]time.Duration{1: 2 * time.Millisecond, 10: 3 * time.Millisecond}[speed])
			logSpan(t, exs, lines, speed)
			t.Logf("lag p50 %.3fms p99 %.3fms max %.3fms", rep.Lag.P50, rep.Lag.P99, rep.Lag.Max)
		})
	}
	t.Run("pooled", func(t *testing.T) {
		_, rep, _ := replayed(t, n, exs, WithPacer(Speed(10)), WithConnections(ConnectionsPooled))
		var b strings.Builder
		rep.WriteSummary(&b)
		if !strings.Contains(b.String(), "connections  pooled") {
			t.Errorf("summary does not say pooled:\n%s", b.String())
		}
	})
}

// logTiming logs (and under REPRISE_LONG=1 checks) the error between each
// request's due time and its start in nginx's log, first request included.
// $msec and $request_time have millisecond resolution.
func logTiming(t *testing.T, lines []logLine, dues map[string]time.Time, limit time.Duration) {
	var errs []time.Duration
	for _, l := range lines {
		if due, ok := dues[l.uri]; ok {
			errs = append(errs, l.at.Sub(due))
			if e := l.at.Sub(due); e > 3*time.Millisecond || e < -3*time.Millisecond {
				t.Logf("%s (connection %d, request %d): %v from due", l.uri, l.conn, l.nth, e)
			}
		}
	}
	if len(errs) == 0 {
		t.Error("no logged request matched a due time")
		return
	}
	abs := make([]time.Duration, len(errs))
	for i, e := range errs {
		abs[i] = max(e, -e)
	}
	first := abs[0]
	slices.Sort(abs)
	p99 := abs[len(abs)*99/100]
	t.Logf("timing from nginx's log (ms resolution): %d requests, first %v, p50 %v, p99 %v, max %v",
		len(abs), first, abs[len(abs)/2], p99, abs[len(abs)-1])
	if os.Getenv("REPRISE_LONG") == "1" && p99 > limit {
		t.Errorf("p99 timing error %v from nginx's log", p99)
	}
}

// mixedClients is a mixed capture: curl fetching three URLs on one
// connection, an ab-style burst of six kept-alive clients sending back to
// back, a client pipelining five requests on one connection, clients that
// send Connection: close, an HTTP/1.0 client without keep-alive, and
// headless Chromium loading a page of 20 subresources on its parallel
// connections.
func mixedClients(t *testing.T) func(base string) {
	return func(base string) {
		if curl, err := exec.LookPath("curl"); err == nil {
			out, err := exec.Command(curl, "-s", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
				base+"/curl/0", base+"/curl/1", base+"/curl/2").CombinedOutput()
			if err != nil {
				t.Errorf("curl: %v %s", err, out)
			}
		}
		keptAlive(6, func(i int, c *http.Client) {
			for k := range 100 {
				get(t, c, fmt.Sprintf("%s/burst/%d/%d", base, i, k))
			}
		})
		if ab, err := exec.LookPath("ab"); err == nil {
			// ApacheBench's keep-alive burst: HTTP/1.0 requests with
			// Connection: Keep-Alive, six connections back to back.
			out, err := exec.Command(ab, "-k", "-q", "-c", "6", "-n", strconv.Itoa(abRequests), "-s", "10", base+abBurst).CombinedOutput()
			if err != nil {
				t.Errorf("ab: %v %s", err, out)
			}
		} else {
			t.Log("ab is not installed (Debian package apache2-utils): the mixed capture has no ApacheBench burst")
		}
		host := strings.TrimPrefix(base, "http://")
		raw(t, host, strings.Repeat("GET /pipe HTTP/1.1\r\nHost: x\r\n\r\n", 5), 5)
		for i := range 3 {
			raw(t, host, fmt.Sprintf("GET /close/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i), 1)
		}
		raw(t, host, "GET /http10 HTTP/1.0\r\n\r\n", 1)
		if bin := chromiumBin(); bin != "" {
			chromium(t, bin, base+"/chromium/index.html")
		} else {
			t.Log("chromium is not installed (Debian package chromium): the mixed capture has no browser")
		}
	}
}

// abBurst is the path ApacheBench requests in the mixed capture, and
// abRequests how many: straight to nginx on loopback ab makes 600 in
// about 10 ms, so short that a replay's first connection's wake-up is a
// tenth of it; 3,000 take long enough to time the burst's pace.
const (
	abBurst    = "/ab/burst"
	abRequests = 3000
)

// chromiumPage is the page headless Chromium loads in the mixed capture:
// its subresources, found at once by the parser, are fetched in parallel,
// on as many connections as Chromium opens for them.
var chromiumPage = func() string {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><title>mixed</title>`)
	for i := range 4 {
		fmt.Fprintf(&b, `<link rel="stylesheet" href="/chromium/css/%d.css"><script src="/chromium/js/%d.js"></script>`, i, i)
	}
	b.WriteString(`</head><body>`)
	for i := range chromiumImages {
		fmt.Fprintf(&b, `<img src="/chromium/img/%d.png">`, i)
	}
	b.WriteString(`</body></html>`)
	return b.String()
}()

// chromiumImages is the images on chromiumPage, beside 4 stylesheets and
// 4 scripts.
const chromiumImages = 12

// chromiumBin returns Debian's chromium, or "" when it is not installed.
func chromiumBin() string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	p, _ := exec.LookPath("chromium")
	return p
}

// chromium loads url in headless Chromium (a fresh profile, no cache)
// until its load event, bounded to a minute.
func chromium(t *testing.T, bin, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--disable-features=Translate,OptimizationHints,MediaRouter", "--user-data-dir="+t.TempDir(), "--dump-dom", url)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("chromium: %v\n%s", err, out)
	}
}

// raw writes reqs at once on a new connection and reads n responses.
func raw(t *testing.T, addr, reqs string, n int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Error(err)
		return
	}
	br := bufio.NewReader(c)
	for range n {
		if !discardResponse(t, br) {
			return
		}
	}
}

// A mixed capture reaches nginx on as many connections as it was recorded
// on, each carrying the requests its recorded connection carried; the
// burst's length is logged (and checked under REPRISE_LONG=1) against
// the recorded one.
func TestNginxConnectionsMixed(t *testing.T) {
	n := startNginx(t)
	exs, conns := recordConns(t, n.url, mixedClients(t))
	replayMixed(t, n, exs, conns)
}

// The mixed clients captured with tcpdump on lo, straight to nginx, and
// imported: the recording holds the connections nginx served, each with
// its record (who closed it, its exchanges), and replays on as many.
func TestNginxConnectionsMixedTcpdump(t *testing.T) {
	n := startNginx(t)
	from := n.size()
	path, stop := testkit.StartTcpdump(t, "lo", strings.TrimPrefix(n.url, "http://"))
	mixedClients(t)(n.url)
	t.Logf("tcpdump: %s", stop())
	time.Sleep(50 * time.Millisecond) // nginx logs as the response ends
	served, _ := n.since(t, from)
	exs, conns := importPcap(t, path)
	if got, want := recordedPerConn(exs), perConn(served); !slices.Equal(got, want) {
		t.Errorf("the capture holds requests per connection %v, nginx served %v", got, want)
	}
	checkConnRecords(t, exs, conns)
	replayMixed(t, n, exs, conns)
}

// importPcap records a pcap file through the one recording loop and
// returns its exchanges and connection records.
func importPcap(t *testing.T, path string) ([]*session.Exchange, []session.ConnInfo) {
	t.Helper()
	src, err := pcapfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p, err := capture.FromPackets(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := session.NewWriter(&buf, session.Metadata{Source: "pcap:" + path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := capture.Record(context.Background(), p, w); err != nil {
		t.Fatal(err)
	}
	r, err := session.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var exs []*session.Exchange
	for {
		ex := new(session.Exchange)
		if err := r.Read(ex); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exs = append(exs, ex)
	}
	return exs, r.Conns()
}

// checkConnRecords checks the records of the mixed clients' connections
// against their exchanges and what each client did: the kept-alive ones
// were closed by their client; the Connection: close and HTTP/1.0 ones by
// whichever side sent its FIN first (nginx closes after the response,
// and the raw client as soon as it has read it: both happen).
func checkConnRecords(t *testing.T, exs []*session.Exchange, conns []session.ConnInfo) {
	t.Helper()
	type seen struct {
		n           int
		first, last int64
		target      string
	}
	by := map[uint64]*seen{}
	for _, ex := range exs {
		s := by[ex.Conn.ID]
		if s == nil {
			s = &seen{first: ex.Timing.RequestStart, target: ex.Request.Target}
			by[ex.Conn.ID] = s
		}
		s.n++
		s.last = max(s.last, ex.Timing.ResponseEnd)
	}
	recs := map[uint64]session.ConnInfo{}
	for _, c := range conns {
		recs[c.ID] = c
	}
	for id, s := range by {
		c, ok := recs[id]
		if !ok {
			t.Errorf("connection %d (%s): no record", id, s.target)
			continue
		}
		want := session.PartyClient
		if (strings.HasPrefix(s.target, "/close/") || s.target == "/http10") && c.ClosedBy == session.PartyServer {
			want = session.PartyServer
		}
		if c.Exchanges != s.n || c.ClosedBy != want || c.Opened > s.first || c.Closed < s.last {
			t.Errorf("connection %d (%s, %d exchanges, %d to %d): record %+v, want closed by %v", id, s.target, s.n, s.first, s.last, c, want)
		}
	}
}

// replayMixed replays a mixed capture at 1x with its connection records
// and checks nginx saw its connections.
func replayMixed(t *testing.T, n *nginx, exs []*session.Exchange, conns []session.ConnInfo) {
	t.Helper()
	want := recordedPerConn(exs)
	t.Logf("recorded %d exchanges on %d connections", len(exs), len(want))
	if chromiumBin() != "" {
		// The page and its 20 subresources, each once, on connections
		// of Chromium's own; favicon.ico may come too.
		onConn, got := map[uint64]int{}, 0
		for _, ex := range exs {
			if strings.HasPrefix(ex.Request.Target, "/chromium/") {
				onConn[ex.Conn.ID]++
				got++
			}
		}
		t.Logf("chromium: %d requests on %d connections %v", got, len(onConn), onConn)
		if got != 1+8+chromiumImages {
			t.Errorf("chromium made %d requests for the page and its subresources, want %d", got, 1+8+chromiumImages)
		}
	}
	prev, piped := map[uint64]*session.Exchange{}, 0
	for _, ex := range exs {
		if p := prev[ex.Conn.ID]; p != nil && ex.Timing.RequestStart < p.Timing.ResponseStart {
			piped++
		}
		prev[ex.Conn.ID] = ex
	}
	t.Logf("%d requests were pipelined in the recording", piped)
	lines, rep, dues := replayedSpans(t, n, exs, []string{"/burst/", abBurst}, WithPacer(Speed(1)), WithRecordedConns(conns))
	if got := perConn(lines); !slices.Equal(got, want) {
		t.Errorf("nginx saw requests per connection %v, recorded %v", got, want)
		for _, l := range lines {
			if !strings.HasPrefix(l.uri, "/burst/") {
				t.Logf("connection %d request %d: %s", l.conn, l.nth, l.uri)
			}
		}
	}
	var first, end int64
	for _, ex := range exs {
		if strings.HasPrefix(ex.Request.Target, "/burst/") {
			if first == 0 || ex.Timing.RequestStart < first {
				first = ex.Timing.RequestStart
			}
			end = max(end, ex.Timing.ResponseEnd)
		}
	}
	logChainGaps(t, exs, dues)
	recorded, replayed := time.Duration(end-first), dues.end.Sub(dues.first)
	ratio := float64(replayed) / float64(recorded)
	t.Logf("the burst took %v recorded, %v replayed: %.2fx", recorded, replayed, ratio)
	if os.Getenv("REPRISE_LONG") == "1" && ratio > 1.1 {
		t.Errorf("the burst replayed in %.2fx its recorded length, want at most 1.1x", ratio)
	}
	checkABBurst(t, exs, dues)
	var b strings.Builder
	rep.WriteSummary(&b)
	t.Log(b.String())
	if c := rep.Connections; c == nil || c.Opened != uint64(len(want)) || c.ClosedByServer+c.ClosedByClient != c.Opened {
		t.Errorf("connections report %+v, want %d opened and as many closed", c, len(want))
	}
	if l := rep.Connections.Life; l == nil || l.Recorded != uint64(len(want)) {
		t.Errorf("recorded connections report %+v, want %d connections replayed with their records", l, len(want))
	}
}

// checkABBurst logs (and under REPRISE_LONG=1 checks, within 1.1x) how
// long ApacheBench's burst took replayed against its recorded length,
// when the capture has one.
func checkABBurst(t *testing.T, exs []*session.Exchange, d *dueLog) {
	var first, end int64
	n := 0
	for _, ex := range exs {
		if ex.Request.Target == abBurst {
			n++
			if first == 0 || ex.Timing.RequestStart < first {
				first = ex.Timing.RequestStart
			}
			end = max(end, ex.Timing.ResponseEnd)
		}
	}
	if n == 0 {
		return
	}
	if n != abRequests {
		t.Errorf("the recording holds %d of ab's %d requests", n, abRequests)
	}
	fe := d.also[abBurst]
	recorded, replayed := time.Duration(end-first), fe[1].Sub(fe[0])
	ratio := float64(replayed) / float64(recorded)
	t.Logf("ab -k -c 6 -n %d took %v recorded, %v replayed: %.2fx", abRequests, recorded, replayed, ratio)
	if os.Getenv("REPRISE_LONG") == "1" && ratio > 1.1 {
		t.Errorf("ab's burst replayed in %.2fx its recorded length, want at most 1.1x", ratio)
	}
}

// logChainGaps logs the median time from a burst response's last byte to
// the next request of its connection, recorded and replayed.
func logChainGaps(t *testing.T, exs []*session.Exchange, d *dueLog) {
	var rec, rep []time.Duration
	for i := range 6 {
		for k := 1; k < 100; k++ {
			prev, next := fmt.Sprintf("/burst/%d/%d", i, k-1), fmt.Sprintf("/burst/%d/%d", i, k)
			rep = append(rep, d.sent[next].Sub(d.done[prev]))
			var pe, ns int64
			for _, ex := range exs {
				switch ex.Request.Target {
				case prev:
					pe = ex.Timing.ResponseEnd
				case next:
					ns = ex.Timing.RequestStart
				}
			}
			rec = append(rec, time.Duration(ns-pe))
		}
	}
	slices.Sort(rec)
	slices.Sort(rep)
	t.Logf("response to next request on a burst connection: recorded p50 %v p90 %v, replayed p50 %v p90 %v",
		rec[len(rec)/2], rec[len(rec)*9/10], rep[len(rep)/2], rep[len(rep)*9/10])
}

// logSpan logs (and under REPRISE_LONG=1 checks, within 0.5% and the log's
// millisecond) the span from the first request to the last in nginx's log
// against the recorded span over the speed.
func logSpan(t *testing.T, exs []*session.Exchange, lines []logLine, speed float64) {
	var first, last int64
	for _, ex := range exs {
		if s := ex.Timing.RequestStart; first == 0 || s < first {
			first = s
		}
		last = max(last, ex.Timing.RequestStart)
	}
	want := time.Duration(float64(last-first) / speed)
	var lo, hi time.Time
	for _, l := range lines {
		if lo.IsZero() || l.at.Before(lo) {
			lo = l.at
		}
		if l.at.After(hi) {
			hi = l.at
		}
	}
	got := hi.Sub(lo)
	off := float64(got-want) / float64(want)
	t.Logf("span %v in nginx's log, %v recorded/speed: %+.2f%%", got, want, 100*off)
	if d := got - want; os.Getenv("REPRISE_LONG") == "1" && max(d, -d) > want/200+time.Millisecond {
		t.Errorf("span %v, want %v within 0.5%%", got, want)
	}
}

// tightBurst is an ab -k style client on its own: conns connections, each
// sending n requests back to back, writing the next as soon as the
// previous response's last byte is read. It returns the exchanges with
// the timestamps it took itself, as a packet capture would hold them.
func tightBurst(t *testing.T, addr string, conns, n int) []*session.Exchange {
	var mu sync.Mutex
	var exs []*session.Exchange
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for k := range n {
				target := fmt.Sprintf("/tight/%d/%d", i, k)
				start := time.Now().UnixNano()
				if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					t.Error(err)
					return
				}
				if !discardResponse(t, br) {
					return
				}
				end := time.Now().UnixNano()
				ex := &session.Exchange{
					Conn: session.Conn{ID: uint64(i + 1)}, Index: k,
					Request:  session.Request{Method: "GET", Target: target, Proto: "HTTP/1.1", Header: session.Headers{{Name: "Host", Value: "x"}}},
					Response: session.Response{Proto: "HTTP/1.1", Status: 200},
					Timing:   session.Timing{RequestStart: start, RequestEnd: start, ResponseStart: end, ResponseEnd: end},
				}
				mu.Lock()
				exs = append(exs, ex)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(exs, func(a, b *session.Exchange) int { return int(a.Timing.RequestStart - b.Timing.RequestStart) })
	return exs
}

// A keep-alive burst replays at 1x in about the time the tight client
// that made it took: the time from a response's last byte to the next
// request of its connection is close to the client's. Logged; checked
// (within 1.1x) under REPRISE_LONG=1.
func TestNginxChainLatency(t *testing.T) {
	n := startNginx(t)
	exs := tightBurst(t, strings.TrimPrefix(n.url, "http://"), 6, 250)
	if len(exs) != 1500 {
		t.Fatalf("the burst made %d exchanges, want 1500", len(exs))
	}
	recorded := time.Duration(exs[len(exs)-1].Timing.ResponseEnd - exs[0].Timing.RequestStart)
	for _, ex := range exs {
		recorded = max(recorded, time.Duration(ex.Timing.ResponseEnd-exs[0].Timing.RequestStart))
	}
	_, rep, d := replayedSpan(t, n, exs, "/tight/", WithPacer(Speed(1)))
	replayed := d.end.Sub(d.first)
	ratio := float64(replayed) / float64(recorded)
	var rec, got []time.Duration
	for i := range 6 {
		for k := 1; k < 250; k++ {
			prev, next := fmt.Sprintf("/tight/%d/%d", i, k-1), fmt.Sprintf("/tight/%d/%d", i, k)
			got = append(got, d.sent[next].Sub(d.done[prev]))
		}
	}
	last := map[uint64]*session.Exchange{}
	for _, ex := range exs {
		if p := last[ex.Conn.ID]; p != nil {
			rec = append(rec, time.Duration(ex.Timing.RequestStart-p.Timing.ResponseEnd))
		}
		last[ex.Conn.ID] = ex
	}
	slices.Sort(rec)
	slices.Sort(got)
	t.Logf("burst of 1500 on 6 connections: %v by the tight client, %v replayed at 1x (%.2fx); response to next request p50 %v (client) vs %v (replay), p90 %v vs %v; service p50 %.3fms",
		recorded, replayed, ratio, rec[len(rec)/2], got[len(got)/2], rec[len(rec)*9/10], got[len(got)*9/10], rep.ServiceTime.P50)
	if os.Getenv("REPRISE_LONG") == "1" && ratio > 1.1 {
		t.Errorf("the burst replayed in %.2fx the tight client's time, want at most 1.1x", ratio)
	}
}
