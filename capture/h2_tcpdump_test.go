package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/reprise-tool/reprise/capture/httpstream"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/fixtures/grpcshop"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
	sh2 "github.com/reprise-tool/reprise/session/http2"
)

// grpcFigures are the per-method figures a capture must reproduce.
type grpcFigures struct {
	Calls, Statuses, MessagesIn, MessagesOut map[string]int
}

// figuresOfCounts is the server's side of the comparison.
func figuresOfCounts(c grpcshop.Counts) grpcFigures {
	return grpcFigures{c.Calls, c.Statuses, c.MessagesIn, c.MessagesOut}
}

func figuresOf(xs []*session.Exchange) grpcFigures {
	return figuresOfCounts(grpcshop.Recorded(xs))
}

// TestGRPCTcpdump runs the gRPC shop on loopback, drives it from two
// clients (one of them with two callers at once, so streams overlap on a
// connection), captures it with tcpdump and checks that every call the
// server counted is recovered from the pcap with its method, its messages
// in each direction and its grpc-status. Then it cuts the capture's first
// packets at many points (the HPACK tables are in use by then) and checks
// that every stream recovered is exactly one of the whole capture's.
func TestGRPCTcpdump(t *testing.T) {
	srv := grpcshop.NewServer()
	addr, stopServer, err := srv.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopServer()
	path, stop := startTcpdump(t, "lo", addr)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := grpcshop.DriveOverlapping(ctx, addr); err != nil {
		t.Fatal(err)
	}
	stop()

	_, port, _ := strings.Cut(addr, ":")
	p, _ := strconv.Atoi(port)
	got, cnt := collectFile(t, path, WithPorts(p))
	want := srv.Counts()
	if len(want.Violations) != 0 {
		t.Errorf("the workload caused violations: %v", want.Violations)
	}
	fig := figuresOf(got)
	if !reflect.DeepEqual(fig, figuresOfCounts(want)) {
		t.Errorf("from the capture:\n %+v\nthe server counted:\n %+v", fig, want)
	}
	streams := map[uint64]int{}
	for _, x := range got {
		if x.Conn.Protocol != session.ProtoH2C || x.Stream == nil || x.Stream.ID%2 != 1 || x.Flags != 0 {
			t.Errorf("stream %+v flags %v proto %v", x.Stream, x.Flags, x.Conn.Protocol)
		}
		streams[x.Conn.ID]++
	}
	for k, v := range cnt.Unsupported {
		// waitCapturing's knocks: grpc-go's server sends its SETTINGS
		// to a client that never speaks.
		if k != httpstream.KindOther {
			t.Errorf("unsupported %s: %d", k, v)
		}
	}
	t.Logf("%d streams on %d connections; server counts %v", len(got), len(streams), want.Calls)
	checkGzipMessages(t, got)
	recordAndInspect(t, path, p, want)
	if *update {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.MarshalIndent(struct {
			Port   int
			Counts grpcshop.Counts
		}{p, want}, "", "  ")
		if os.WriteFile(filepath.Join("testdata", "grpcshop-lo.pcap"), raw, 0o644) != nil ||
			os.WriteFile(filepath.Join("testdata", "grpcshop-lo.truth.json"), append(js, '\n'), 0o644) != nil {
			t.Fatal("cannot write testdata")
		}
	}

	midConnection(t, path, p, got)
}

// TestGRPCFixture checks the committed capture of the gRPC shop (made by
// TestGRPCTcpdump -update) against the server's counts saved with it, so
// the check runs where tcpdump cannot.
func TestGRPCFixture(t *testing.T) {
	var truth struct {
		Port   int
		Counts grpcshop.Counts
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "grpcshop-lo.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "grpcshop-lo.pcap")
	got, _ := collectFile(t, path, WithPorts(truth.Port))
	if fig := figuresOf(got); !reflect.DeepEqual(fig, figuresOfCounts(truth.Counts)) {
		t.Errorf("from the capture:\n %+v\nthe server counted:\n %+v", fig, truth.Counts)
	}
	checkGzipMessages(t, got)
	recordAndInspect(t, path, truth.Port, truth.Counts)
	midConnection(t, path, truth.Port, got)
}

// checkGzipMessages finds the calls made with grpc-encoding gzip and
// reads their messages back through session/http2's Payloads.
func checkGzipMessages(t *testing.T, xs []*session.Exchange) {
	t.Helper()
	n := 0
	for _, x := range xs {
		if x.Request.Header.Get("grpc-encoding") != "gzip" {
			continue
		}
		n++
		if len(x.Stream.GRPC.Messages) == 0 || !x.Stream.GRPC.Messages[0].Compressed {
			t.Errorf("gzip call's messages %+v", x.Stream.GRPC.Messages)
		}
		reqs, err := sh2.Payloads(x, false)
		if err != nil || len(reqs) != 1 {
			t.Fatalf("gzip request payloads: %d, %v", len(reqs), err)
		}
		if item, _, _ := grpcshop.Field(reqs[0], 2); string(item) != strings.Repeat("teapot ", 40) {
			t.Errorf("gzip request decodes to %q", reqs[0])
		}
		if resps, err := sh2.Payloads(x, true); err != nil || len(resps) != 1 {
			t.Errorf("gzip response payloads: %d, %v", len(resps), err)
		}
	}
	if n != 3 {
		t.Errorf("%d gzip calls recovered, want 3 (one per Drive)", n)
	}
}

// recordAndInspect records the pcap to a recording with the one recording
// loop, reads it back and checks inspect's HTTP/2 figures against the
// server's counts.
func recordAndInspect(t *testing.T, pcap string, port int, want grpcshop.Counts) {
	t.Helper()
	src, err := pcapfile.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pl, err := FromPackets(context.Background(), src, WithPorts(port))
	if err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(t.TempDir(), "grpc.rpz")
	w, err := session.Create(rec, session.Metadata{Source: "pcap:" + pcap})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Record(context.Background(), pl, w); err != nil {
		t.Fatal(err)
	}
	fig, err := sh2.SummarizeFiles(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	calls, statuses := map[string]int{}, map[string]int{}
	var in, out int
	for _, m := range fig.Methods {
		calls[m.Method] = int(m.Calls)
		for _, st := range m.Statuses {
			statuses[m.Method+" "+st.Name] = int(st.Count)
		}
		in += int(m.FromClient)
		out += int(m.FromServer)
	}
	var wantIn, wantOut int
	for _, n := range want.MessagesIn {
		wantIn += n
	}
	for _, n := range want.MessagesOut {
		wantOut += n
	}
	if !reflect.DeepEqual(calls, want.Calls) || !reflect.DeepEqual(statuses, want.Statuses) || in != wantIn || out != wantOut {
		t.Errorf("inspect figures from the recording: calls %v statuses %v messages %d/%d; the server: %v %v %d/%d",
			calls, statuses, in, out, want.Calls, want.Statuses, wantIn, wantOut)
	}
	if fig.Connections["h2c"] != 2 || fig.MaxConcurrency < 2 {
		t.Errorf("connections %v, concurrency %d", fig.Connections, fig.MaxConcurrency)
	}
	var b strings.Builder
	fig.WriteText(&b)
	t.Logf("inspect:%s", b.String())
}

// midConnection writes the capture without its first k packets for many k
// and checks nothing wrong is emitted: each stream recovered equals the
// whole capture's stream of the same connection addresses and id.
func midConnection(t *testing.T, path string, port int, whole []*session.Exchange) {
	t.Helper()
	key := func(x *session.Exchange) string {
		return fmt.Sprintf("%v %v %d", x.Conn.Client, x.Conn.Server, x.Stream.ID)
	}
	truth := map[string]*session.Exchange{}
	for _, x := range whole {
		truth[key(x)] = x
	}
	r := testkit.ReadFile(t, path, pcapgo.NewReader)
	var pkts [][]byte
	var cis []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, data)
		cis = append(cis, ci)
	}
	var recovered, undecodable, cuts int
	reasons := map[string]int{}
	dir := t.TempDir()
	for cut := 1; cut < len(pkts)*9/10; cut += max(1, len(pkts)/40) {
		cuts++
		out := filepath.Join(dir, fmt.Sprintf("cut%d.pcap", cut))
		wf, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriter(wf)
		w.WriteFileHeader(65536, r.LinkType())
		for k := cut; k < len(pkts); k++ {
			w.WritePacket(cis[k], pkts[k])
		}
		wf.Close()
		src, err := pcapfile.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		// Every other cut without the server's port: the parser then
		// guesses the roles and corrects the guess from the first header
		// block.
		var opts []Option
		if cuts%2 == 0 {
			opts = append(opts, WithPorts(port))
		}
		got, cnt := collect(t, src, opts...)
		src.Close()
		for _, x := range got {
			if x.Stream == nil {
				t.Fatalf("cut %d: an HTTP/1 exchange from an HTTP/2 capture: %q", cut, x.Request.Target)
			}
			w, ok := truth[key(x)]
			if ok && (x.Conn.Client != w.Conn.Client || x.Conn.Server != w.Conn.Server) {
				t.Errorf("cut %d: stream %s with client %v, server %v", cut, key(x), x.Conn.Client, x.Conn.Server)
			}
			switch {
			case !ok:
				t.Errorf("cut %d: stream %s not in the whole capture", cut, key(x))
			case !reflect.DeepEqual(x.Request.Header, w.Request.Header) || !reflect.DeepEqual(x.Response.Header, w.Response.Header) ||
				!reflect.DeepEqual(x.Response.Trailer, w.Response.Trailer) || string(x.Request.Body) != string(w.Request.Body) ||
				string(x.Response.Body) != string(w.Response.Body) || !reflect.DeepEqual(x.Stream.GRPC, w.Stream.GRPC):
				t.Errorf("cut %d: stream %s differs from the whole capture's:\n got %v %v %+v\nwant %v %v %+v", cut, key(x),
					x.Request.Header, x.Response.Header, x.Stream.GRPC, w.Request.Header, w.Response.Header, w.Stream.GRPC)
			}
		}
		recovered += len(got)
		for k, v := range cnt.Unsupported {
			if k == httpstream.KindOther {
				continue // waitCapturing's knocks
			}
			if !strings.HasPrefix(k, httpstream.KindUndecodableStream) {
				t.Errorf("cut %d: unsupported %s: %d", cut, k, v)
			}
			undecodable += int(v)
			reasons[strings.TrimPrefix(k, httpstream.KindUndecodableStream)] += int(v)
		}
	}
	t.Logf("mid-connection: over %d cuts, %d streams recovered exactly, %d counted undecodable (%v), none wrong", cuts, recovered, undecodable, reasons)
	if recovered == 0 || undecodable == 0 {
		t.Errorf("the cuts recovered %d and counted %d: the test shows nothing", recovered, undecodable)
	}
}

// TestH2CTcpdump captures plain h2c: Go's h2c server answered by curl with
// prior knowledge and by curl's HTTP/1.1 Upgrade (when curl has HTTP/2),
// else by Go's http2 client, and checks each request is recovered.
func TestH2CTcpdump(t *testing.T) {
	h := h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s over %s", r.Method, r.URL.Path, r.Proto)
		// Flushed, so no Content-Length: the client must read to the
		// END_STREAM the trailers carry rather than close after the body.
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", "42")
	}), &http2.Server{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	defer hs.Close()
	path, stop := startTcpdump(t, "lo", ln.Addr().String())
	base := "http://" + ln.Addr().String()
	var want []string
	out, err := exec.Command("curl", "--version").Output()
	if err == nil && strings.Contains(string(out), "HTTP2") {
		for _, args := range [][]string{
			{"--http2-prior-knowledge", base + "/prior"},
			{"--http2", base + "/upgrade"},
		} {
			if b, err := exec.Command("curl", append([]string{"-sS", "--max-time", "5"}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("curl %v: %v %s", args, err, b)
			}
		}
		// h2c's handler serves the upgraded request as the HTTP/1.1
		// request it was; its response still came as HTTP/2 frames.
		want = []string{"GET /prior 200 GET /prior over HTTP/2.0 42 0", "GET /upgrade 200 GET /upgrade over HTTP/1.1 42 0"}
	} else {
		t.Skip("curl has no HTTP2 here")
	}
	stop()
	got, cnt := collectFile(t, path)
	var lines []string
	for _, x := range got {
		lines = append(lines, fmt.Sprintf("%s %s %d %s %s %v", x.Request.Method, x.Request.Target, x.Response.Status, x.Response.Body, x.Response.Trailer.Get("x-sum"), x.Flags))
		if x.Conn.Protocol != session.ProtoH2C || x.Stream == nil || x.Stream.ID != 1 {
			t.Errorf("%s: protocol %v stream %+v", x.Request.Target, x.Conn.Protocol, x.Stream)
		}
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n %s\nwant\n %s", strings.Join(lines, "\n "), strings.Join(want, "\n "))
	}
	if len(cnt.Unsupported) != 0 {
		t.Errorf("unsupported %v", cnt.Unsupported)
	}
}
