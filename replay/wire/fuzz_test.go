package wire

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// maxLearnBody is the engine's body limit, which the tests read with.
const maxLearnBody = 4 << 20

// FuzzWireResponse feeds arbitrary bytes as a server's answer to the wire
// client: it must return a response or an error, never panic or hang past
// its deadline, and never return more body than the answer held.
func FuzzWireResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nuntil close"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"))
	f.Add([]byte("garbage\r\n\r\n"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		w := New(Config{Addr: "127.0.0.1:1", ConnectTimeout: time.Millisecond, // a retry dials a closed loopback port
			Timeout: 500 * time.Millisecond, MaxIdle: 1, BodyLimit: maxLearnBody})
		c := &scriptConn{r: bytes.NewReader(answer)}
		w.Idle(NewConn(c))
		var held *Conn
		resp, n, err := w.DoOn(context.Background(), &Request{Method: "GET", Target: "/", Host: "x",
			Header: session.Headers{{Name: "X-A", Value: "b"}}}, &held)
		if err == nil && (resp == nil || int(n) > len(answer) || !bytes.Contains(answer, resp.Body) && len(resp.Body) > 0 && !bytes.Contains(answer, []byte("chunked"))) {
			t.Fatalf("response %+v (%d bytes) from %q", resp, n, answer)
		}

		// Read for its status alone, the answer gives the same status,
		// size and outcome, and nothing is kept.
		c = &scriptConn{r: bytes.NewReader(answer)}
		w.CloseAll()
		w = New(Config{Addr: "127.0.0.1:1", ConnectTimeout: time.Millisecond, Timeout: 500 * time.Millisecond, MaxIdle: 1})
		w.Idle(NewConn(c))
		only := &Request{Method: "GET", Target: "/", Host: "x", StatusOnly: true}
		held = nil
		oresp, on, oerr := w.DoOn(context.Background(), only, &held)
		if (oerr == nil) != (err == nil) {
			t.Fatalf("status only: %v; whole: %v; from %q", oerr, err, answer)
		}
		if err == nil && (oresp.Status != resp.Status || on != n || oresp.Header != nil || oresp.Body != nil) {
			t.Fatalf("status only %d (%d bytes, %v %q); whole %d (%d bytes) from %q", oresp.Status, on, oresp.Header, oresp.Body, resp.Status, n, answer)
		}
	})
}

// scriptConn is a connection whose peer answers with fixed bytes and then
// closes; what is written to it is discarded.
type scriptConn struct {
	r *bytes.Reader
	net.Conn
}

func (c *scriptConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
