package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/reprise-tool/reprise/fixtures/grpcshop"
	"github.com/reprise-tool/reprise/session"
)

// TestH2GRPCShopThroughProxy: grpc-go clients (h2c with prior knowledge)
// drive the gRPC shop through the proxy, three callers at once on two
// connections so streams overlap: every call of every kind (unary,
// server-, client-streaming, bidi, gzip'd, refused) gets the answer it
// gets directly, and the recording holds every stream with its method,
// its messages each way and its grpc-status, equal to the server's counts.
func TestH2GRPCShopThroughProxy(t *testing.T) {
	srv := grpcshop.NewServer()
	addr, stopServer, err := srv.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopServer()
	r := startProxy(t, "http://"+addr)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := grpcshop.DriveOverlapping(ctx, r.addr); err != nil {
		t.Fatal(err)
	}
	xs := r.stop(t)
	c := srv.Counts()
	want := c
	want.Violations = nil
	if got := grpcshop.Recorded(xs); !reflect.DeepEqual(got, want) {
		t.Errorf("recorded figures\n%+v\nserver's\n%+v", got, want)
	}
	calls := 0
	for _, n := range c.Calls {
		calls += n
	}
	ids := map[uint64]bool{}
	for _, x := range xs {
		ids[x.Conn.ID] = true
		if x.Conn.Protocol != session.ProtoH2C || x.Stream == nil || x.Stream.ID%2 != 1 || x.Flags.Incomplete() || x.Stream.GRPC == nil || !x.Stream.GRPC.HasStatus {
			t.Errorf("stream %s: proto %v stream %+v flags %v", x.Request.Target, x.Conn.Protocol, x.Stream, x.Flags)
		}
	}
	st := r.p.Stats()
	if len(xs) != calls || len(ids) != 2 || st.Protocols["h2c"] != 2 || st.Streams != uint64(calls) || len(st.Unsupported) != 0 {
		t.Errorf("%d exchanges on %d connections for %d calls; stats %+v", len(xs), len(ids), calls, st)
	}
}

// h2cUpstream is a Go server speaking h2c (prior knowledge and Upgrade)
// and HTTP/1.1; it answers with the protocol, method, path and body it
// got, a response header and a trailer.
func h2cUpstream(t *testing.T) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Up", "1")
		// Headers first, so there is no content-length and the client
		// waits for the trailer's END_STREAM before it closes.
		w.(http.Flusher).Flush()
		fmt.Fprintf(w, "%s %s %s %s", r.Proto, r.Method, r.URL.Path, b)
		w.Header().Set("X-Sum", fmt.Sprint(len(b)))
	})
	return h2cUpstreamHandler(t, h)
}

// h2cUpstreamHandler serves h with h2c (prior knowledge and Upgrade) and
// HTTP/1.1.
func h2cUpstreamHandler(t *testing.T, h http.Handler) *httptest.Server {
	up := httptest.NewServer(h2c.NewHandler(h, &xhttp2.Server{}))
	t.Cleanup(up.Close)
	return up
}

func needCurl(t *testing.T) {
	t.Helper()
	out, err := exec.Command("curl", "--version").Output()
	if err != nil || !strings.Contains(string(out), "nghttp2") {
		t.Skip("needs curl with nghttp2 (Debian's curl)")
	}
}

func curl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestH2Curl: curl through the proxy to a Go h2c server, with prior
// knowledge and with the HTTP/1.1 Upgrade handshake: curl gets what the
// server answered over HTTP/2, and each request is recorded as one h2c
// stream with its method, path, body, response and trailer; the upgraded
// request is stream 1 with the 101 as its interim response.
func TestH2Curl(t *testing.T) {
	needCurl(t)
	up := h2cUpstream(t)
	r := startProxy(t, up.URL)
	cases := []struct {
		name, flag, method, path, body string
		seen                           string // the proto Go's handler saw
	}{
		// the client preface first
		{"prior knowledge", "--http2-prior-knowledge", "POST", "/pk", "prior knowledge", "HTTP/2.0"},
		// HTTP/1.1 with Upgrade: h2c, then HTTP/2 (curl upgrades
		// requests without a body only; Go's h2c handler serves the
		// upgraded request as the HTTP/1.1 request it came as)
		{"upgrade", "--http2", "GET", "/up", "", "HTTP/1.1"},
	}
	for _, c := range cases {
		args := []string{c.flag, "-w", " %{http_version}", "http://" + r.addr + c.path}
		if c.body != "" {
			args = append(args, "-d", c.body)
		}
		got := curl(t, args...)
		if want := c.seen + " " + c.method + " " + c.path + " " + c.body + " 2"; got != want {
			t.Errorf("%s: curl got %q, want %q", c.name, got, want)
		}
	}
	xs := r.stop(t)
	if len(xs) != len(cases) {
		t.Fatalf("recorded %d exchanges", len(xs))
	}
	for k, x := range xs {
		c := cases[k]
		if x.Conn.Protocol != session.ProtoH2C || x.Request.Method != c.method || x.Request.Target != c.path || string(x.Request.Body) != c.body ||
			x.Response.Status != 200 || x.Response.Header.Get("x-up") != "1" || x.Response.Trailer.Get("x-sum") != fmt.Sprint(len(c.body)) ||
			string(x.Response.Body) != c.seen+" "+c.method+" "+c.path+" "+c.body || x.Response.Proto != "HTTP/2.0" || x.Flags != 0 || x.Stream == nil || x.Stream.ID != 1 {
			t.Errorf("%s: recorded %+v", c.name, x)
		}
		if upgraded := c.flag == "--http2"; upgraded != (len(x.Stream.Interim) == 1 && x.Stream.Interim[0].Status == 101) ||
			upgraded && x.Request.Proto != "HTTP/1.1" {
			t.Errorf("%s: interim %+v proto %s", c.name, x.Stream.Interim, x.Request.Proto)
		}
	}
	st := r.p.Stats()
	if st.Protocols["h2c"] != 2 || st.Protocols["h1"] != 0 || st.Streams != 2 || len(st.Unsupported) != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestH2TLSCurl: curl --http2 trusts the proxy's self-signed certificate
// (written out as the CLI's --tls-cert-out does) and gets h2 by ALPN; the
// proxy speaks h2 over TLS to a Go https upstream, and records the stream
// as h2 with the TLS parameters counted.
func TestH2TLSCurl(t *testing.T) {
	needCurl(t)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %v %s", r.Proto, r.URL.Path, r.TLS != nil, b)
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	cert, certFile := selfSignedFile(t)
	r := startProxy(t, up.URL, WithTLSConfig(&tls.Config{RootCAs: roots}), WithListenTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	_, port, _ := net.SplitHostPort(r.addr)
	got := curl(t, "--http2", "--cacert", certFile, "-d", "over tls", "https://localhost:"+port+"/secure")
	if want := "HTTP/2.0 /secure true over tls"; got != want {
		t.Errorf("curl got %q, want %q", got, want)
	}
	xs := r.stop(t)
	if len(xs) != 1 {
		t.Fatalf("recorded %d exchanges", len(xs))
	}
	x := xs[0]
	if x.Conn.Protocol != session.ProtoH2 || x.Request.Target != "/secure" || string(x.Request.Body) != "over tls" ||
		string(x.Response.Body) != got || x.Response.Status != 200 || x.Flags != 0 {
		t.Errorf("recorded %+v", x)
	}
	st := r.p.Stats()
	alpn := 0
	for k, v := range st.TLS {
		if strings.HasSuffix(k, "sni=localhost alpn=h2") {
			alpn += int(v)
		}
	}
	if st.Protocols["h2"] != 1 || alpn != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestH2TLSToH2CUpstream: a client that speaks h2 over TLS to the proxy
// is relayed as h2c to an http:// upstream that speaks it, and recorded as
// h2 (what the client spoke).
func TestH2TLSToH2CUpstream(t *testing.T) {
	needCurl(t)
	up := h2cUpstream(t)
	cert, certFile := selfSignedFile(t)
	r := startProxy(t, up.URL, WithListenTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	got := curl(t, "--http2", "--cacert", certFile, "-w", " %{http_version}", "https://"+r.addr+"/t")
	if want := "HTTP/2.0 GET /t  2"; got != want {
		t.Errorf("curl got %q, want %q", got, want)
	}
	xs := r.stop(t)
	if len(xs) != 1 || xs[0].Conn.Protocol != session.ProtoH2 || xs[0].Response.Trailer.Get("x-sum") != "0" || xs[0].Flags != 0 {
		t.Fatalf("recorded %+v", xs)
	}
}

// goAwayFrom opens an h2c connection to the proxy at addr and returns the
// GOAWAY it answers with.
func goAwayFrom(t *testing.T, addr string) *xhttp2.GoAwayFrame {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, xhttp2.ClientPreface)
	fr := xhttp2.NewFramer(c, c)
	fr.WriteSettings()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		if g, ok := f.(*xhttp2.GoAwayFrame); ok {
			return g
		}
	}
}

// TestH2UpstreamRefused: an HTTP/2 client whose connection cannot be
// relayed gets a GOAWAY that processed no stream and says why, and the
// connection counts as an error.
func TestH2UpstreamRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	h1only := httptest.NewTLSServer(http.NotFoundHandler()) // ALPN http/1.1 only
	defer h1only.Close()
	roots := x509.NewCertPool()
	roots.AddCert(h1only.Certificate())
	cases := []struct {
		name, upstream string
		code           xhttp2.ErrCode
		why            string
	}{
		// nothing listens
		{"down", "http://" + dead, xhttp2.ErrCodeInternal, "unreachable"},
		// an https upstream without h2: clients may fall back to HTTP/1.1
		{"no h2", h1only.URL, xhttp2.ErrCodeHTTP11Required, "did not negotiate h2"},
	}
	for _, c := range cases {
		r := startProxy(t, c.upstream, WithTLSConfig(&tls.Config{RootCAs: roots}))
		g := goAwayFrom(t, r.addr)
		if g.ErrCode != c.code || g.LastStreamID != 0 || !strings.Contains(string(g.DebugData()), c.why) {
			t.Errorf("%s: GOAWAY %v last %d %q", c.name, g.ErrCode, g.LastStreamID, g.DebugData())
		}
		if xs := r.stop(t); len(xs) != 0 || r.p.Stats().Errors != 1 {
			t.Errorf("%s: recorded %d, stats %+v", c.name, len(xs), r.p.Stats())
		}
	}
}

// h2cClient speaks HTTP/2 with prior knowledge over cleartext.
func h2cClient() *http.Client {
	tr := &xhttp2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestH2FullDuplexAndFlowControl: a stream's DATA goes through as it
// comes, both ways at once (the client writes a line only after reading
// the answer to the previous one, which deadlocks a relay that buffers a
// body), and bodies far larger than HTTP/2's initial 64 KiB windows pass
// whole both ways, so WINDOW_UPDATEs are relayed end to end. The
// recording keeps each body up to the cap with its full size.
func TestH2FullDuplexAndFlowControl(t *testing.T) {
	const big = 3 << 20
	up := h2cUpstreamHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			n, _ := io.Copy(io.Discard, r.Body)
			w.Write(make([]byte, big))
			w.Header().Set(http.TrailerPrefix+"X-Got", fmt.Sprint(n))
			return
		}
		w.Header().Set("Trailer", "X-Got")
		w.(http.Flusher).Flush()
		buf := make([]byte, 4)
		for {
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				return
			}
			w.Write([]byte(strings.ToUpper(string(buf))))
			w.(http.Flusher).Flush()
		}
	}))
	r := startProxy(t, up.URL, WithMaxBody(1024))
	cl := h2cClient()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+r.addr+"/duplex", pr)
	done := make(chan error, 1)
	go func() {
		resp, err := cl.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		buf := make([]byte, 4)
		for _, line := range []string{"ping", "pong", "done"} {
			if _, err := io.WriteString(pw, line); err != nil {
				done <- err
				return
			}
			if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != strings.ToUpper(line) {
				done <- fmt.Errorf("after %q read %q: %v", line, buf, err)
				return
			}
		}
		pw.Close()
		_, err = io.ReadAll(resp.Body)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lines did not go through one by one")
	}
	resp, err := cl.Post("http://"+r.addr+"/big", "application/octet-stream", strings.NewReader(strings.Repeat("x", big)))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != big || resp.Trailer.Get("X-Got") != fmt.Sprint(big) {
		t.Fatalf("downloaded %d, server got %q", n, resp.Trailer.Get("X-Got"))
	}
	cl.CloseIdleConnections()
	xs := r.stop(t)
	if len(xs) != 2 {
		t.Fatalf("recorded %d exchanges", len(xs))
	}
	d, b := xs[0], xs[1]
	if string(d.Request.Body) != "pingpongdone" || string(d.Response.Body) != "PINGPONGDONE" || d.Flags != 0 {
		t.Errorf("duplex recorded %q -> %q flags %v", d.Request.Body, d.Response.Body, d.Flags)
	}
	if b.Request.BodySize != big || b.Response.BodySize != big || len(b.Request.Body) != 1024 || len(b.Response.Body) != 1024 ||
		b.Flags != session.FlagRequestTruncated|session.FlagResponseTruncated || b.Response.Trailer.Get("x-got") != fmt.Sprint(big) {
		t.Errorf("big recorded sizes %d/%d kept %d/%d flags %v trailer %v", b.Request.BodySize, b.Response.BodySize, len(b.Request.Body), len(b.Response.Body), b.Flags, b.Response.Trailer)
	}
}

// TestH2ResetPassesThrough: a client that cancels a stream mid-response
// sends RST_STREAM; it reaches the upstream (the handler's context ends)
// and the stream is recorded with the reset, by the client, CANCEL.
func TestH2ResetPassesThrough(t *testing.T) {
	cancelled := make(chan struct{})
	up := h2cUpstreamHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			w.Write([]byte("tick\n"))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				close(cancelled)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	r := startProxy(t, up.URL)
	cl := h2cClient()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+r.addr+"/ticks", nil)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 5))
	cancel()
	resp.Body.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream never saw the stream reset")
	}
	cl.CloseIdleConnections()
	xs := r.stop(t)
	if len(xs) != 1 || xs[0].Stream == nil || xs[0].Stream.Reset.By != session.PartyClient || xs[0].Stream.Reset.Code != uint32(xhttp2.ErrCodeCancel) {
		t.Fatalf("recorded %+v", xs)
	}
}
