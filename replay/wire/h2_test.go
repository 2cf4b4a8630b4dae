package wire_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"

	"github.com/reprise-tool/reprise/fixtures/grpcshop"
	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
)

// h2cServer serves h on loopback as h2c with prior knowledge, allowing
// maxStreams streams at once per connection.
func h2cServer(t *testing.T, maxStreams uint32, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{MaxConcurrentStreams: maxStreams})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func h2Client(addr string) *wire.H2Client {
	return wire.NewH2(wire.Config{Addr: addr, ConnectTimeout: time.Second, Timeout: 5 * time.Second, BodyLimit: 1 << 20})
}

// TestH2Line: many streams go on one connection at once, no more than the
// server allows at a time (the others wait and are counted), header
// fields in recorded order with hop-by-hop ones dropped, bodies both
// ways, and a body larger than the server's initial window.
func TestH2Line(t *testing.T) {
	var cur, peak atomic.Int32
	var mu sync.Mutex
	var order [][]string
	addr := h2cServer(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if r.ProtoMajor != 2 || r.Header.Get("Connection") != "" || r.Header.Get("Te") != "trailers" {
			http.Error(w, "not http/2 or hop-by-hop kept: "+r.Proto, 400)
			return
		}
		mu.Lock()
		order = append(order, []string{r.Header.Get("X-A"), r.Header.Get("X-B")})
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Trailer", "X-Sum")
		w.Write(body)
		w.Header().Set("X-Sum", "done")
	}))
	c := h2Client(addr)
	defer c.CloseAll()
	l := c.NewLine()
	big := make([]byte, 200<<10) // above the default 64 KiB window
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &wire.H2Request{Request: &wire.Request{Method: "POST", Target: "/echo", Host: "example.test",
				Header: session.Headers{{Name: ":method", Value: "POST"}, {Name: ":path", Value: "/x"}, {Name: "X-A", Value: "1"},
					{Name: "Connection", Value: "keep-alive"}, {Name: "TE", Value: "trailers"}, {Name: "X-B", Value: "2"}},
				Body: big[:i*40<<10]}}
			resp, n, err := l.Do(context.Background(), req)
			if err != nil {
				errs <- err
				return
			}
			if resp.Status != 200 || n != int64(len(req.Body)) || resp.Trailer.Get("x-sum") != "done" {
				errs <- errors.New("bad response: " + resp.Trailer.Get("x-sum") + string(resp.Body[:min(len(resp.Body), 80)]))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := c.Stats()
	if st.Opened != 1 {
		t.Errorf("opened %d connections, want 1", st.Opened)
	}
	if peak.Load() > 2 || st.ConcurrencyWaits == 0 {
		t.Errorf("peak concurrency %d (server allows 2), waits %d", peak.Load(), st.ConcurrencyWaits)
	}
	if len(order) != 6 || order[0][0] != "1" || order[0][1] != "2" {
		t.Errorf("header fields %v", order)
	}
}

// TestH2StreamReset: a stream the server resets fails with its own kind,
// and the connection carries the next stream.
func TestH2StreamReset(t *testing.T) {
	addr := h2cServer(t, 100, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reset" {
			panic(http.ErrAbortHandler)
		}
		w.Write([]byte("ok"))
	}))
	c := h2Client(addr)
	defer c.CloseAll()
	l := c.NewLine()
	_, _, err := l.Do(context.Background(), &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/reset", Host: "h"}})
	if wire.Kind(err) != wire.KindStreamReset {
		t.Fatalf("reset stream: %v, kind %q", err, wire.Kind(err))
	}
	resp, _, err := l.Do(context.Background(), &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/", Host: "h"}})
	if err != nil || string(resp.Body) != "ok" || c.Stats().Opened != 1 {
		t.Fatalf("after the reset: %v %+v, opened %d", err, resp, c.Stats().Opened)
	}
}

// grpcFrame prefixes a gRPC message.
func grpcFrame(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// TestH2GRPC: unary and bidi calls against grpc-go, the bidi one's
// messages sent at their offsets; a non-OK grpc-status is its own kind.
func TestH2GRPC(t *testing.T) {
	srv := grpcshop.NewServer()
	addr, stop, err := srv.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := h2Client(addr)
	defer c.CloseAll()
	l := c.NewLine()
	hdr := session.Headers{{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"}}
	call := func(method string, at []time.Duration, msgs ...[]byte) (*session.Response, error) {
		req := &wire.H2Request{Request: &wire.Request{Method: "POST", Target: "/grpcshop.Shop/" + method, Host: addr, Header: hdr}, GRPC: true}
		for i, m := range msgs {
			req.Body = append(req.Body, grpcFrame(m)...)
			if at != nil {
				req.Parts = append(req.Parts, wire.H2Part{End: len(req.Body), At: at[i]})
			}
		}
		resp, _, err := l.Do(context.Background(), req)
		return resp, err
	}
	resp, err := call("Login", nil, grpcshop.Msg(1, "ann", 2, "wrong"))
	var ge *wire.GRPCError
	if !errors.As(err, &ge) || ge.Code != 7 || wire.Kind(err) != "grpc-status-7" || resp == nil || resp.Status != 200 {
		t.Fatalf("wrong password: %v (kind %q)", err, wire.Kind(err))
	}
	if _, err := call("Login", nil, grpcshop.Msg(1, "ann", 2, "secret")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	// A bidi chat: the second message goes 60 ms after the first.
	resp, err = call("Chat", []time.Duration{0, 60 * time.Millisecond}, grpcshop.Msg(1, "hi"), grpcshop.Msg(1, "there"))
	if err != nil || time.Since(t0) < 60*time.Millisecond || len(resp.Body) < 2*5 {
		t.Errorf("chat: %v after %v, %+v", err, time.Since(t0), resp)
	}
	n := srv.Counts()
	if n.Calls["/grpcshop.Shop/Login"] != 2 || n.MessagesIn["/grpcshop.Shop/Chat"] != 2 || n.MessagesOut["/grpcshop.Shop/Chat"] != 2 {
		t.Errorf("counts %+v", n)
	}
}

// goAwayServer is a raw HTTP/2 server whose odd connections answer the
// first stream with GOAWAY (last stream 0: nothing processed) and whose
// even ones answer 200.
func goAwayServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 1; ; n++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveGoAway(nc, n%2 == 1)
		}
	}()
	return ln.Addr().String()
}

func serveGoAway(nc net.Conn, away bool) {
	defer nc.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(nc, preface); err != nil {
		return
	}
	fr := http2.NewFramer(nc, nc)
	fr.WriteSettings()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		h, ok := f.(*http2.HeadersFrame)
		if !ok {
			continue
		}
		if away {
			fr.WriteGoAway(0, http2.ErrCodeNo, nil)
			continue
		}
		var hb bytes.Buffer
		hpack.NewEncoder(&hb).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: h.StreamID, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	}
}

// TestH2GoAway: a stream the server's GOAWAY left unprocessed is sent again
// on a new connection when its method is idempotent, and fails with its
// own kind otherwise.
func TestH2GoAway(t *testing.T) {
	addr := goAwayServer(t)
	c := h2Client(addr)
	defer c.CloseAll()
	resp, _, err := c.NewLine().Do(context.Background(), &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/", Host: "h"}})
	if err != nil || resp.Status != 200 || c.Stats().Opened != 2 {
		t.Fatalf("GET after GOAWAY: %v %+v, opened %d", err, resp, c.Stats().Opened)
	}
	_, _, err = c.NewLine().Do(context.Background(), &wire.H2Request{Request: &wire.Request{Method: "POST", Target: "/", Host: "h", Body: []byte("x")}})
	if wire.Kind(err) != wire.KindGoAway || c.Stats().Opened != 3 {
		t.Fatalf("POST after GOAWAY: %v (kind %q), opened %d", err, wire.Kind(err), c.Stats().Opened)
	}
}

// TestH2TLS: h2 over TLS by ALPN, with the client's TLS config offering
// "h2" first; a server that negotiates HTTP/1.1 is an error that says
// what to do.
func TestH2TLS(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(r.Proto))
		}))
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		c := wire.NewH2(wire.Config{Addr: srv.Listener.Addr().String(), TLS: wire.H2TLSConfig(&tls.Config{RootCAs: pool, ServerName: "example.com", NextProtos: []string{"http/1.1"}}),
			ConnectTimeout: time.Second, Timeout: 5 * time.Second, BodyLimit: 1 << 10})
		resp, _, err := c.NewLine().Do(context.Background(), &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/", Host: "example.com"}})
		switch {
		case h2 && (err != nil || string(resp.Body) != "HTTP/2.0"):
			t.Errorf("h2 by ALPN: %v %+v", err, resp)
		case !h2 && (wire.Kind(err) != wire.KindProtocol || !strings.Contains(err.Error(), "--protocol h1")):
			t.Errorf("a server without h2: %v", err)
		}
		// the handshake is counted with the protocol it negotiated
		if ts, want := c.Stats().TLS, map[bool]string{true: "h2", false: "http/1.1"}[h2]; ts.Handshakes != 1 || ts.ALPN[want] != 1 {
			t.Errorf("h2 %v: tls %+v, want one handshake negotiating %s", h2, ts, want)
		}
		c.CloseAll()
		srv.Close()
	}
}

// GRPCParts reads the messages' ends from the body to send, whose
// messages may have changed length since the recording, and keeps the
// recorded offsets scaled by the speed.
func TestGRPCPartsRewritten(t *testing.T) {
	g := &session.GRPC{Messages: []session.Message{
		{Size: 10, At: 0}, {FromServer: true, Size: 3, At: int64(time.Millisecond)}, {Size: 20, At: int64(40 * time.Millisecond)},
	}}
	body := append(append([]byte{0, 0, 0, 0, 4}, "abcd"...), append([]byte{0, 0, 0, 0, 30}, make([]byte, 30)...)...)
	got := wire.GRPCParts(g, body, 2)
	want := []wire.H2Part{{End: 9}, {End: 44, At: 20 * time.Millisecond}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parts %v, want %v", got, want)
	}
	// A body that frames no message: the recorded sizes.
	if got := wire.GRPCParts(g, nil, 0); !reflect.DeepEqual(got, []wire.H2Part{{End: 15}, {End: 40}}) {
		t.Errorf("parts of the recorded sizes %v", got)
	}
}

// TestH2StreamEnds: a stream that gets no response ends at its timeout,
// and one whose context ends, ends then, whether its context is the one
// every stream shares or one of its own (more of them than the
// connection watches); the connection serves the next stream after all
// of them.
func TestH2StreamEnds(t *testing.T) {
	release := make(chan struct{})
	addr := h2cServer(t, 100, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Write([]byte("ok"))
	}))
	defer close(release)
	hang := func() *wire.H2Request {
		return &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/hang", Host: "h", StatusOnly: true}}
	}
	shared, cancelShared := context.WithCancel(context.Background())
	defer cancelShared()
	tests := []struct {
		name    string
		timeout time.Duration
		streams int
		ctx     func(i int) (context.Context, context.CancelFunc)
		want    error
	}{
		{"timeout", 150 * time.Millisecond, 1, func(int) (context.Context, context.CancelFunc) { return context.Background(), func() {} }, context.DeadlineExceeded},
		{"shared context", 5 * time.Second, 3, func(int) (context.Context, context.CancelFunc) { return shared, cancelShared }, context.Canceled},
		{"own contexts", 5 * time.Second, 8, func(int) (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := wire.NewH2(wire.Config{Addr: addr, ConnectTimeout: time.Second, Timeout: tc.timeout, BodyLimit: 1 << 10})
			defer c.CloseAll()
			l := c.NewLine()
			errs := make(chan error, tc.streams)
			t0 := time.Now()
			for i := range tc.streams {
				ctx, cancel := tc.ctx(i)
				go func() {
					_, _, err := l.Do(ctx, hang())
					errs <- err
				}()
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			for range tc.streams {
				if err := <-errs; !errors.Is(err, tc.want) {
					t.Errorf("stream ended with %v, want %v", err, tc.want)
				}
			}
			if d := time.Since(t0); d > 2*time.Second {
				t.Errorf("streams ended after %v", d)
			}
			resp, _, err := l.Do(context.Background(), &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/", Host: "h"}})
			if err != nil || string(resp.Body) != "ok" || c.Stats().Opened != 1 {
				t.Fatalf("after them: %v %+v, opened %d", err, resp, c.Stats().Opened)
			}
		})
	}
}

// TestH2SlotWaiters: with the server allowing one stream at a time, the
// streams waiting for the slot take it one after another, and those whose
// context ends while they wait leave without holding up the others (an
// ending stream wakes one waiter, not all: the wake a leaving waiter had
// must pass on).
func TestH2SlotWaiters(t *testing.T) {
	var cur, peak atomic.Int32
	addr := h2cServer(t, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		w.Write([]byte("ok"))
	}))
	c := wire.NewH2(wire.Config{Addr: addr, ConnectTimeout: time.Second, Timeout: 5 * time.Second, BodyLimit: 1 << 10})
	defer c.CloseAll()
	l := c.NewLine()
	if err := l.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	const streams = 40
	var wg sync.WaitGroup
	var ok, cancelled atomic.Int32
	errs := make(chan error, streams)
	for i := range streams {
		ctx, cancel := context.WithCancel(context.Background())
		if i%3 == 1 {
			time.AfterFunc(time.Duration(i)*time.Millisecond, cancel)
		} else {
			defer cancel()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _, err := l.Do(ctx, &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/", Host: "h"}})
			switch {
			case err == nil && string(resp.Body) == "ok":
				ok.Add(1)
			case i%3 == 1 && errors.Is(err, context.Canceled):
				cancelled.Add(1)
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ok.Load()+cancelled.Load() != streams || ok.Load() < streams*2/3 {
		t.Errorf("%d answered, %d cancelled of %d", ok.Load(), cancelled.Load(), streams)
	}
	if st := c.Stats(); peak.Load() != 1 || st.ConcurrencyWaits == 0 || st.Opened != 1 {
		t.Errorf("peak concurrency %d (server allows 1), waits %d, opened %d", peak.Load(), st.ConcurrencyWaits, st.Opened)
	}
}

// TestH2DrainCloses: a connection the server's GOAWAY retired while a
// stream was still on it is closed once that stream ends, although the
// server keeps it open.
func TestH2DrainCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	away, answer, closed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			if nc, err := ln.Accept(); err == nil {
				serveGoAway(nc, false)
			}
		}()
		defer close(closed)
		defer nc.Close()
		if _, err := io.ReadFull(nc, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		var mu sync.Mutex
		fr := http2.NewFramer(nc, nc)
		fr.WriteSettings()
		status := func(id uint32) {
			var hb bytes.Buffer
			hpack.NewEncoder(&hb).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			mu.Lock()
			defer mu.Unlock()
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return // the client closed the connection
			}
			h, ok := f.(*http2.HeadersFrame)
			switch {
			case !ok:
			case h.StreamID == 1:
				mu.Lock()
				fr.WriteGoAway(1<<31-1, http2.ErrCodeNo, nil)
				mu.Unlock()
				close(away)
				go func() { <-answer; status(1) }()
			default:
				status(h.StreamID)
			}
		}
	}()
	c := h2Client(ln.Addr().String())
	defer c.CloseAll()
	l := c.NewLine()
	req := &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/", Host: "h"}}
	first := make(chan error, 1)
	go func() {
		_, _, err := l.Do(context.Background(), req)
		first <- err
	}()
	<-away
	// The line moves to a new connection once it has read the GOAWAY.
	for i := 0; i < 1000 && c.Stats().Opened < 2; i++ {
		if _, _, err := l.Do(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if c.Stats().Opened != 2 {
		t.Fatalf("opened %d connections, want 2", c.Stats().Opened)
	}
	close(answer)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the retired connection is still open after its last stream ended")
	}
}
