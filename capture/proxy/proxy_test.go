package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// running is a proxy serving on a loopback listener for one test.
type running struct {
	p      *Proxy
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startProxy(t testing.TB, upstream string, opts ...Option) *running {
	t.Helper()
	p, err := New(upstream, append([]Option{WithGrace(time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the proxy and returns every exchange it recorded.
func (r *running) stop(t testing.TB) []*session.Exchange {
	t.Helper()
	r.cancel()
	var out []*session.Exchange
	for {
		x, err := r.p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.done <- nil
	return out
}

// rawUpstream accepts one connection, reads exactly len(want) bytes, and
// answers resp; got receives what it read.
func rawUpstream(t *testing.T, n int, resp []byte) (addr string, got chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, n)
		_, err = io.ReadFull(c, b)
		got <- b
		if err == nil {
			c.Write(resp)
		}
		io.Copy(io.Discard, c)
	}()
	return "http://" + ln.Addr().String(), got
}

// exchangeRaw writes req to addr and reads until n bytes have come back.
func exchangeRaw(t *testing.T, addr string, req []byte, n int) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d response bytes: %v (got %q)", n, err, b)
	}
	return b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestForwardsBytesExactly(t *testing.T) {
	large := randBytes(3 << 20)
	binary := []byte{0, 1, 2, 0xff, '\r', '\n', '\r', '\n', 0x80}
	tests := []struct {
		name       string
		req, resp  []byte
		maxBody    int64
		check      func(t *testing.T, x *session.Exchange)
		reqBody    string
		respBody   string
		reqTrunc   bool
		respTrunc  bool
		respStatus int
	}{
		{
			// Header names keep their case, order and repetitions.
			name:       "headers as sent",
			req:        []byte("GET /a?b=1 HTTP/1.1\r\nhost: x\r\nX-lower: 1\r\nACCEPT:  */*  \r\nX-lower: 2\r\n\r\n"),
			resp:       []byte("HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nContent-Length: 2\r\nSet-Cookie: b=2\r\n\r\nok"),
			respBody:   "ok",
			respStatus: 200,
			check: func(t *testing.T, x *session.Exchange) {
				want := session.Headers{{Name: "host", Value: "x"}, {Name: "X-lower", Value: "1"}, {Name: "ACCEPT", Value: "*/*"}, {Name: "X-lower", Value: "2"}}
				if fmt.Sprint(x.Request.Header) != fmt.Sprint(want) {
					t.Errorf("request headers %q, want %q", x.Request.Header, want)
				}
				if x.Request.Target != "/a?b=1" || x.Request.Method != "GET" || x.Request.Proto != "HTTP/1.1" {
					t.Errorf("request line %q %q %q", x.Request.Method, x.Request.Target, x.Request.Proto)
				}
				if got := x.Response.Header.Values("set-cookie"); fmt.Sprint(got) != "[a=1 b=2]" || x.Response.Header[0].Name != "set-cookie" {
					t.Errorf("response headers %q", x.Response.Header)
				}
			},
		},
		{
			// A binary body with CRLFs inside, framed by Content-Length.
			name:       "binary body",
			req:        append([]byte("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n"), binary...),
			resp:       append([]byte("HTTP/1.1 201 Created\r\nContent-Length: 9\r\n\r\n"), binary...),
			reqBody:    string(binary),
			respBody:   string(binary),
			respStatus: 201,
		},
		{
			// A chunked upload keeps its chunk boundaries, extensions and
			// trailers on the wire; the recording holds the de-chunked body.
			name:       "chunked upload",
			req:        []byte("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"),
			resp:       []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
			reqBody:    "abc0123456789",
			respBody:   "hi",
			respStatus: 200,
		},
		{
			// A large body is forwarded whole, recorded up to the cap.
			name:       "large body over the cap",
			req:        append([]byte(fmt.Sprintf("PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(large))), large...),
			resp:       append([]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(large))), large...),
			maxBody:    1000,
			reqBody:    string(large[:1000]),
			respBody:   string(large[:1000]),
			reqTrunc:   true,
			respTrunc:  true,
			respStatus: 200,
			check: func(t *testing.T, x *session.Exchange) {
				if x.Request.BodySize != int64(len(large)) || x.Response.BodySize != int64(len(large)) {
					t.Errorf("body sizes %d %d, want %d", x.Request.BodySize, x.Response.BodySize, len(large))
				}
			},
		},
		{
			// A 204 has no body even with a Content-Length.
			name:       "no content",
			req:        []byte("DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n"),
			resp:       []byte("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
			respStatus: 204,
		},
		{
			// 100 Continue is relayed and the final response recorded.
			name:       "interim response",
			req:        []byte("POST /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"),
			resp:       []byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes"),
			reqBody:    "hi",
			respBody:   "yes",
			respStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, got := rawUpstream(t, len(tt.req), tt.resp)
			var opts []Option
			if tt.maxBody > 0 {
				opts = append(opts, WithMaxBody(tt.maxBody))
			}
			r := startProxy(t, up, opts...)
			back := exchangeRaw(t, r.addr, tt.req, len(tt.resp))
			if !bytes.Equal(back, tt.resp) {
				t.Fatalf("client got %q\nwant %q", clip(string(back)), clip(string(tt.resp)))
			}
			if g := <-got; !bytes.Equal(g, tt.req) {
				t.Fatalf("upstream got %q\nwant %q", clip(string(g)), clip(string(tt.req)))
			}
			xs := r.stop(t)
			if len(xs) != 1 {
				t.Fatalf("recorded %d exchanges, want 1", len(xs))
			}
			x := xs[0]
			if string(x.Request.Body) != tt.reqBody || string(x.Response.Body) != tt.respBody {
				t.Errorf("bodies %q / %q, want %q / %q", clip(string(x.Request.Body)), clip(string(x.Response.Body)), clip(tt.reqBody), clip(tt.respBody))
			}
			if x.Response.Status != tt.respStatus {
				t.Errorf("status %d, want %d", x.Response.Status, tt.respStatus)
			}
			if (x.Flags&session.FlagRequestTruncated != 0) != tt.reqTrunc || (x.Flags&session.FlagResponseTruncated != 0) != tt.respTrunc {
				t.Errorf("flags %b", x.Flags)
			}
			tm := x.Timing
			if tm.RequestStart == 0 || tm.RequestStart > tm.RequestEnd || tm.RequestStart > tm.ResponseStart || tm.ResponseStart > tm.ResponseEnd {
				t.Errorf("timing out of order: %+v", tm)
			}
			if x.Conn.ID == 0 || !x.Conn.Client.Addr().IsLoopback() || !x.Conn.Server.Addr().IsLoopback() {
				t.Errorf("conn %+v", x.Conn)
			}
			if tt.check != nil {
				tt.check(t, x)
			}
		})
	}
}

func TestPipelining(t *testing.T) {
	req := []byte("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3")
	up, _ := rawUpstream(t, len(req), resp)
	r := startProxy(t, up)
	if back := exchangeRaw(t, r.addr, req, len(resp)); !bytes.Equal(back, resp) {
		t.Fatalf("client got %q", back)
	}
	xs := r.stop(t)
	if len(xs) != 3 {
		t.Fatalf("recorded %d, want 3", len(xs))
	}
	for i, x := range xs {
		if x.Index != i || x.Request.Target != fmt.Sprintf("/%d", i+1) || x.Conn.ID != xs[0].Conn.ID {
			t.Errorf("exchange %d: index %d target %s conn %d", i, x.Index, x.Request.Target, x.Conn.ID)
		}
	}
	if string(xs[2].Response.Body) != "3" || xs[1].Response.BodySize != 0 {
		t.Errorf("HEAD framing wrong: %q %d", xs[2].Response.Body, xs[1].Response.BodySize)
	}
}

func TestKeepAliveBothSides(t *testing.T) {
	var upConns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			upConns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	r := startProxy(t, srv.URL)
	// One client connection, used for five requests in turn.
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 5 {
		fmt.Fprintf(c, "POST /p%d HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody", i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != fmt.Sprintf("hello /p%d", i) || resp.Close {
			t.Fatalf("got %q (close %v)", b, resp.Close)
		}
	}
	if upConns.Load() != 1 {
		t.Fatalf("upstream saw %d connections for one client connection", upConns.Load())
	}
	c.Close()
	xs := r.stop(t)
	if len(xs) != 5 {
		t.Fatalf("recorded %d, want 5", len(xs))
	}
	for i, x := range xs {
		if x.Index != i || x.Conn.ID != xs[0].Conn.ID || string(x.Request.Body) != "body" {
			t.Errorf("exchange %d: %+v", i, x.Conn)
		}
	}
}

func TestStreamingReachesClientEarly(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		fmt.Fprint(w, "data: second\n\n")
	}))
	defer srv.Close()
	r := startProxy(t, srv.URL)
	cl := &http.Client{Timeout: 15 * time.Second}
	resp, err := cl.Get("http://" + r.addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	// The upstream has not finished: the first event came through alone.
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest %q", rest)
	}
	resp.Body.Close()
	cl.CloseIdleConnections()
	xs := r.stop(t)
	if len(xs) != 1 || string(xs[0].Response.Body) != "data: first\n\ndata: second\n\n" {
		t.Fatalf("recorded %v", xs)
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	r := startProxy(t, "http://"+dead)
	resp, err := http.Post("http://"+r.addr+"/x", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(b), "unreachable") {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	xs := r.stop(t)
	if len(xs) != 1 {
		t.Fatalf("recorded %d, want 1", len(xs))
	}
	x := xs[0]
	if x.Response.Status != 502 || string(x.Request.Body) != "payload" || len(x.Warnings) == 0 || !strings.Contains(x.Warnings[len(x.Warnings)-1], "connection refused") {
		t.Fatalf("recorded %+v", x)
	}
	if r.p.Stats().Errors != 1 {
		t.Fatalf("stats %+v", r.p.Stats())
	}
}

func TestConcurrentClients(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer srv.Close()
	r := startProxy(t, srv.URL)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Sprintf("w%d-i%d", w, i)
				resp, err := cl.Post("http://"+r.addr+"/echo", "text/plain", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != body {
					errs <- fmt.Errorf("got %q want %q", b, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	xs := r.stop(t)
	if len(xs) != workers*each {
		t.Fatalf("recorded %d, want %d (stats %+v)", len(xs), workers*each, r.p.Stats())
	}
	for _, x := range xs {
		if !bytes.Equal(x.Request.Body, x.Response.Body) {
			t.Fatalf("request %q answered %q", x.Request.Body, x.Response.Body)
		}
	}
}

func TestWebSocketTunnelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := testkit.ServeOne(t, ln, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br) // echo frames
	})
	r := startProxy(t, "http://"+up)
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(c, "\x81\x02hi")
	b := make([]byte, 4)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "\x81\x02hi" {
		t.Fatalf("echo %q %v", b, err)
	}
	c.Close()
	xs := r.stop(t)
	if len(xs) != 0 || r.p.Stats().Unsupported["websocket"] != 1 {
		t.Fatalf("recorded %d, stats %+v", len(xs), r.p.Stats())
	}
}

func TestNonHTTPRelayedRaw(t *testing.T) {
	req := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00")
	resp := []byte("\x00\x00\x00\x04\x00")
	up, got := rawUpstream(t, len(req), resp)
	r := startProxy(t, up)
	if back := exchangeRaw(t, r.addr, req, len(resp)); !bytes.Equal(back, resp) {
		t.Fatalf("client got %q", back)
	}
	if g := <-got; !bytes.Equal(g, req) {
		t.Fatalf("upstream got %q", g)
	}
	xs := r.stop(t)
	if st := r.p.Stats(); len(xs) != 0 || st.Protocols["h2c"] != 1 || len(st.Unsupported) != 0 {
		t.Fatalf("recorded %d, stats %+v", len(xs), r.p.Stats())
	}
}

func TestDropsCountedNotBlocking(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	r := startProxy(t, srv.URL, WithQueue(2))
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	for range 6 {
		resp, err := cl.Get("http://" + r.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cl.CloseIdleConnections()
	xs := r.stop(t)
	s := r.p.Stats()
	if len(xs) != 2 || s.Dropped != 4 || s.Exchanges != 2 || r.p.Counters().Unsupported["dropped"] != 4 {
		t.Fatalf("recorded %d, stats %+v", len(xs), s)
	}
}

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1:9000", false, true}, // loopback v4
		{"[::1]:9000", false, true},     // loopback v6
		{"localhost:9000", false, true}, // by name
		{":9000", false, false},         // every interface
		{"0.0.0.0:9000", false, false},  // every interface, spelled out
		{"10.1.2.3:9000", false, false}, // a public address
		{"10.1.2.3:9000", true, true},   // allowed when asked
		{"127.0.0.1", false, false},     // no port
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckListen(tt.addr, tt.remote)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckListen(%q, %v) = %v", tt.addr, tt.remote, err)
			}
		})
	}
	if err := CheckListen(":1", false); !errors.Is(err, ErrRemoteListen) {
		t.Fatalf("err %v is not ErrRemoteListen", err)
	}
}

func TestNewErrors(t *testing.T) {
	for _, u := range []string{"127.0.0.1:80", "ftp://x", "http://x/path", "http://"} {
		if _, err := New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := New("http://x", WithMaxBody(-1)); err == nil {
		t.Error("negative max body accepted")
	}
}

func TestExpectContinue(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body) // reading the body makes net/http send 100 Continue
		fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	defer srv.Close()
	r := startProxy(t, srv.URL)
	// The client holds the body back until 100 Continue arrives, or for
	// ExpectContinueTimeout; a proxy that held the interim response back
	// would cost the whole timeout.
	tr := &http.Transport{ExpectContinueTimeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("PUT", "http://"+r.addr+"/upload", strings.NewReader("0123456789"))
	req.Header.Set("Expect", "100-continue")
	t0 := time.Now()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "got 10 bytes" {
		t.Fatalf("got %q", b)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("request took %v: the 100 Continue was not relayed promptly", d)
	}
	tr.CloseIdleConnections()
	xs := r.stop(t)
	if len(xs) != 1 || xs[0].Response.Status != 200 || string(xs[0].Request.Body) != "0123456789" {
		t.Fatalf("recorded %+v", xs)
	}
}

func TestClientHalfClose(t *testing.T) {
	req := []byte("GET /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndone")
	up, got := rawUpstream(t, len(req), resp)
	r := startProxy(t, up)
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(req)
	c.(*net.TCPConn).CloseWrite() // the client has nothing more to say
	back, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(back, resp) {
		t.Fatalf("client got %q, %v", back, err)
	}
	if g := <-got; !bytes.Equal(g, req) {
		t.Fatalf("upstream got %q", g)
	}
	xs := r.stop(t)
	if len(xs) != 1 || xs[0].Flags.Incomplete() {
		t.Fatalf("recorded %+v", xs)
	}
}

func TestUpgradeRefusedKeepsParsing(t *testing.T) {
	// An upstream that refuses the upgrade and keeps the connection.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	r := startProxy(t, srv.URL)
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("%v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	c.Close()
	xs := r.stop(t)
	if len(xs) != 2 || xs[0].Response.Status != 400 || xs[1].Request.Target != "/next" || xs[1].Response.Status != 200 || xs[1].Index != 1 {
		t.Fatalf("recorded %d: %+v", len(xs), xs)
	}
}

func TestShutdownLetsInFlightFinish(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "late")
	}))
	defer srv.Close()
	r := startProxy(t, srv.URL)
	type res struct {
		body string
		err  error
	}
	done := make(chan res, 1)
	go func() {
		resp, err := http.Get("http://" + r.addr + "/slow")
		if err != nil {
			done <- res{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- res{string(b), err}
	}()
	<-started
	xs := r.stop(t) // cancels while the request is in flight
	got := <-done
	if got.err != nil || got.body != "late" {
		t.Fatalf("client got %q, %v", got.body, got.err)
	}
	if len(xs) != 1 || xs[0].Response.Status != 200 {
		t.Fatalf("recorded %+v", xs)
	}
}

func TestHTTPSUpstream(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %v", r.TLS != nil)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	r := startProxy(t, srv.URL, WithTLSConfig(&tls.Config{RootCAs: pool}))
	resp, err := http.Get("http://" + r.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "tls true" {
		t.Fatalf("got %q", b)
	}
	xs := r.stop(t)
	if len(xs) != 1 || string(xs[0].Response.Body) != "tls true" {
		t.Fatalf("recorded %+v", xs)
	}
}

func TestHTTPSUpstreamVerifies(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	r := startProxy(t, srv.URL) // system roots: the test certificate is not trusted
	resp, err := http.Get("http://" + r.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(b), "certificate") {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

// TestExpectRefused: the upstream answers an Expect: 100-continue request
// at once, the client never sends the body and closes; the exchange is
// complete, with a note, not a gap.
func TestExpectRefused(t *testing.T) {
	head := []byte("PUT /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp := []byte("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	up, _ := rawUpstream(t, len(head), resp)
	r := startProxy(t, up)
	if back := exchangeRaw(t, r.addr, head, len(resp)); !bytes.Equal(back, resp) {
		t.Fatalf("client got %q", back)
	}
	xs := r.stop(t)
	if len(xs) != 1 || xs[0].Response.Status != 417 || xs[0].Flags.Incomplete() || len(xs[0].Warnings) != 1 {
		t.Fatalf("recorded %d, first %+v", len(xs), *xs[0])
	}
}

// TestTLSRelayedRaw: a TLS ClientHello has no newline, so the proxy must
// not wait for one; it relays the bytes and counts the connection.
func TestTLSRelayedRaw(t *testing.T) {
	hello := []byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5}
	resp := []byte{0x16, 0x03, 0x03, 0x00, 0x01, 9}
	up, got := rawUpstream(t, len(hello), resp)
	r := startProxy(t, up)
	if back := exchangeRaw(t, r.addr, hello, len(resp)); !bytes.Equal(back, resp) {
		t.Fatalf("client got %q", back)
	}
	if g := <-got; !bytes.Equal(g, hello) {
		t.Fatalf("upstream got %q", g)
	}
	xs := r.stop(t)
	if len(xs) != 0 || r.p.Stats().Unsupported["tls"] != 1 {
		t.Fatalf("recorded %d, stats %+v", len(xs), r.p.Stats())
	}
}
