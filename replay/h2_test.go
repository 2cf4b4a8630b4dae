package replay

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
	"github.com/reprise-tool/reprise/session/http2/h2test"
)

// h2Events collects what an http2.Assembler finishes.
type h2Events struct{ xs []*session.Exchange }

func (e *h2Events) Started(*session.Exchange)    {}
func (e *h2Events) Exchange(x *session.Exchange) { e.xs = append(e.xs, x) }
func (e *h2Events) Dropped(*session.Exchange)    {}
func (e *h2Events) Undecodable(string)           {}

// h2cRecording assembles one h2c connection from frames: a GET with its
// cookies split as HTTP/2 sends them, a POST with a body, and a gRPC call.
func h2cRecording(t *testing.T) []*session.Exchange {
	t.Helper()
	ev := &h2Events{}
	a := http2.New(http2.Config{Conn: session.Conn{ID: 1, Protocol: session.ProtoH2C}, MaxBody: 1 << 20, Start: true}, ev)
	client := http2.Preface + h2test.Settings +
		h2test.Headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "shop.example", ":path", "/items?page=2",
			"cookie", "a=1", "accept", "*/*", "cookie", "b=2") +
		h2test.Headers(3, false, ":method", "POST", ":scheme", "http", ":authority", "shop.example", ":path", "/orders",
			"content-type", "application/json", "te", "trailers") + h2test.Data(3, true, `{"n":1}`) +
		h2test.Headers(5, false, ":method", "POST", ":scheme", "http", ":authority", "shop.example", ":path", "/shop.Shop/Get",
			"content-type", "application/grpc", "te", "trailers") + h2test.Data(5, true, "\x00\x00\x00\x00\x02\x08\x01")
	server := h2test.Settings +
		h2test.Headers(1, false, ":status", "200") + h2test.Data(1, true, "ok") +
		h2test.Headers(3, false, ":status", "201") + h2test.Data(3, true, "made") +
		h2test.Headers(5, false, ":status", "200", "content-type", "application/grpc") + h2test.Data(5, false, "\x00\x00\x00\x00\x00") +
		h2test.Headers(5, true, "grpc-status", "0")
	a.Feed(http2.FromClient, []byte(client), t0)
	a.Feed(http2.FromServer, []byte(server), t0+int64(time.Millisecond))
	a.Close()
	if len(ev.xs) != 3 {
		t.Fatalf("assembled %d exchanges, want 3", len(ev.xs))
	}
	for _, x := range ev.xs {
		x.Session = "s"
	}
	return ev.xs
}

// With --protocol h1, a recorded HTTP/2 request reaches an HTTP/1 server
// in its HTTP/1 form:
// no pseudo-header field as a header line, Host from the target (or from
// :authority with --keep-host), cookies joined; the gRPC call is left out
// and counted with its reason.
func TestReplayHTTP2AsHTTP1(t *testing.T) {
	for _, keepHost := range []bool{false, true} {
		srv := newScripted(t, nil)
		rep := run(t, srv.URL, source(h2cRecording(t)...), WithPacer(Max{}), WithKeepHost(keepHost), WithProtocol(ProtocolH1))
		got := srv.arrivals()
		if len(got) != 2 {
			t.Fatalf("keep-host %v: %d requests arrived, want 2 (no gRPC)", keepHost, len(got))
		}
		wantHost := strings.TrimPrefix(srv.URL, "http://")
		if keepHost {
			wantHost = "shop.example"
		}
		for _, a := range got {
			if a.Host != wantHost {
				t.Errorf("%s: host %q, want %q", a.Path, a.Host, wantHost)
			}
			for name := range a.Header {
				if strings.HasPrefix(name, ":") {
					t.Errorf("%s: pseudo-header field %q sent as a header line", a.Path, name)
				}
			}
			if a.Path == "/shop.Shop/Get" {
				t.Errorf("a gRPC call went over HTTP/1")
			}
		}
		if a := srv.find(t, "/items"); a.Method != "GET" || a.Query != "page=2" || a.Header.Get("Cookie") != "a=1; b=2" || a.Header.Get("Accept") != "*/*" {
			t.Errorf("GET arrived as %s ?%s cookie %q accept %q", a.Method, a.Query, a.Header.Get("Cookie"), a.Header.Get("Accept"))
		}
		if a := srv.find(t, "/orders"); a.Method != "POST" || a.Body != `{"n":1}` {
			t.Errorf("POST arrived as %s %q", a.Method, a.Body)
		}
		if rep.Filtered.NeedsHTTP2 != 1 || rep.Requests.Scheduled != 2 || rep.Requests.Errors != 0 {
			t.Errorf("filtered %+v, requests %+v", rep.Filtered, rep.Requests)
		}
		var sum strings.Builder
		rep.WriteSummary(&sum)
		if !strings.Contains(sum.String(), "1 gRPC calls: grpc needs http2 replay") {
			t.Errorf("the summary does not name the skipped gRPC call:\n%s", sum.String())
		}
	}
}

// The committed tcpdump capture of the gRPC shop replayed with --protocol
// h1: nothing of it goes over HTTP/1, and every call is counted as needing
// HTTP/2 replay.
func TestReplayGRPCCaptureSkipped(t *testing.T) {
	path := filepath.Join("..", "capture", "testdata", "grpcshop-lo.pcap")
	if _, err := os.Stat(path); err != nil {
		t.Skip(err)
	}
	pk, err := pcapfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer pk.Close()
	p, err := capture.FromPackets(context.Background(), pk)
	if err != nil {
		t.Fatal(err)
	}
	var xs []*session.Exchange
	for {
		x, err := p.Next()
		if err != nil {
			break
		}
		if http2.NeedsHTTP2(&x.Request) {
			x.Session = "s"
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		t.Fatal("no gRPC call in the capture")
	}
	srv := newScripted(t, nil)
	rep := run(t, srv.URL, source(xs...), WithPacer(Max{}), WithProtocol(ProtocolH1))
	if n := len(srv.arrivals()); n != 0 {
		t.Errorf("%d gRPC calls reached the HTTP/1 server", n)
	}
	if rep.Filtered.NeedsHTTP2 != uint64(len(xs)) || rep.Requests.Scheduled != 0 {
		t.Errorf("filtered %+v of %d gRPC calls, requests %+v", rep.Filtered, len(xs), rep.Requests)
	}
	if !strings.Contains(rep.Failure, "gRPC calls need HTTP/2 replay") {
		t.Errorf("failure %q does not say why nothing was replayed", rep.Failure)
	}
}
