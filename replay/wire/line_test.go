package wire

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A Line keeps one connection for its requests, pipelined or not, ends it
// when the server says close or its caller closes it, and opens a new one
// when used again; the Client counts what each side did.
func TestLine(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bye" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	w := New(Config{Addr: srv.Listener.Addr().String(), ConnectTimeout: time.Second, Timeout: 5 * time.Second, MaxIdle: 4, BodyLimit: 1 << 20})
	defer w.CloseAll()
	ctx := context.Background()
	l := w.NewLine()
	if err := l.Open(ctx); err != nil {
		t.Fatal(err)
	}
	// Two requests pipelined: both written before either is read.
	r1, r2 := &Request{Method: "GET", Target: "/1", Host: "x"}, &Request{Method: "GET", Target: "/2", Host: "x"}
	c1, err := l.Write(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := l.Write(ctx, r2)
	if err != nil || c2 != c1 {
		t.Fatalf("second write: %v, same connection %v", err, c2 == c1)
	}
	for _, rr := range []struct {
		c   *Conn
		req *Request
	}{{c1, r1}, {c2, r2}} {
		resp, _, err := l.Read(ctx, rr.c, rr.req)
		if err != nil || string(resp.Body) != rr.req.Target {
			t.Fatalf("read %s: %v %v", rr.req.Target, resp, err)
		}
	}
	// The server says close: the line's connection ends with it.
	bye := &Request{Method: "GET", Target: "/bye", Host: "x"}
	c, err := l.Write(ctx, bye)
	if err == nil {
		_, _, err = l.Read(ctx, c, bye)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Used again, it opens a new connection; the client asks to close it.
	again := &Request{Method: "GET", Target: "/again", Host: "x", Close: true}
	if c, err = l.Write(ctx, again); err == nil {
		_, _, err = l.Read(ctx, c, again)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Used a third time and closed by its caller.
	if err := l.Open(ctx); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l.Close() // closing a closed line does nothing
	for i := 0; i < 100 && opened.Load() < 3; i++ {
		time.Sleep(10 * time.Millisecond) // the server may accept the last one after it closed
	}
	s := w.Stats()
	if opened.Load() != 3 || s.Opened != 3 || s.Reused != 2 || s.ClosedByServer != 1 || s.ClosedByClient != 2 || len(s.Connect) != 3 {
		t.Errorf("server saw %d connections; stats %+v; want 3 opened, 2 reused, 1 closed by the server, 2 by the client", opened.Load(), s)
	}
}

// A server's close that came right after its response shows at once to
// a request that must not be sent twice: the socket is looked at however
// recent the response.
func TestSendableAfterClose(t *testing.T) {
	if !Peeks {
		t.Skip("the socket is not peeked at on this system")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		s, err := l.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 512)
		s.Read(buf)
		io.WriteString(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		s.Close() // a close the response did not announce
	}()
	w := New(Config{Addr: l.Addr().String(), ConnectTimeout: time.Second, Timeout: 5 * time.Second, MaxIdle: 4})
	defer w.CloseAll()
	var held *Conn
	if _, _, err := w.DoOn(context.Background(), &Request{Method: "GET", Target: "/", Host: "x"}, &held); err != nil || held == nil {
		t.Fatalf("first exchange: %v, kept %v", err, held != nil)
	}
	// On loopback the close's FIN is in the socket when the server's
	// Close returns: the look finds it, a moment after the response.
	<-closed
	if held.sendable() {
		t.Error("sendable just after the server's unannounced close: true, want false")
	}
}
