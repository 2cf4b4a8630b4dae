package replay

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/reprise-tool/reprise/session"
)

// TestLiveValuesH2 replays the token server's two users recorded over h2c,
// one connection each: tokens in authorization metadata, cookies and ids
// are substituted in HTTP/2 header fields and bodies as in HTTP/1, and
// every request arrives as HTTP/2 on the recorded connections.
func TestLiveValuesH2(t *testing.T) {
	as := newAuthServer("pw")
	var h1 atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			h1.Add(1)
		}
		as.ServeHTTP(w, r)
	}), &http2.Server{})}
	go srv.Serve(ln)
	defer srv.Close()
	var exs []*session.Exchange
	for i, u := range [][]*session.Exchange{userSession("u1", "alice", "pw", 0), userSession("u2", "bob", "pw", 3)} {
		for k, x := range u {
			x.Conn.ID = uint64(i + 1)
			x.Index = k
			h2Stream(x.Session, uint32(2*k+1))(x)
		}
		exs = append(exs, u...)
	}
	rep := run(t, "http://"+ln.Addr().String(), source(exs...), WithPacer(Speed(10)))
	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.bad) > 0 || as.logins != 2 {
		t.Fatalf("server saw %d bad requests: %q; %d logins", len(as.bad), as.bad, as.logins)
	}
	if h1.Load() != 0 || rep.Connections.HTTP2 != 2 || rep.Connections.Opened != 2 {
		t.Errorf("%d HTTP/1 requests; connections %+v", h1.Load(), rep.Connections)
	}
	if rep.Requests.Responses != 16 || rep.Requests.Uncorrelated != 0 || rep.StatusMismatch != 0 {
		t.Errorf("requests %+v, status mismatches %d", rep.Requests, rep.StatusMismatch)
	}
}

// h2Stream makes exchange x stream id of its connection, in session sess.
func h2Stream(sess string, id uint32) func(*session.Exchange) {
	return func(x *session.Exchange) {
		x.Session = sess
		x.Conn.Protocol = session.ProtoH2C
		x.Request.Proto, x.Response.Proto = "HTTP/2.0", "HTTP/2.0"
		x.Request.Header = append(session.Headers{{Name: ":method", Value: x.Request.Method}, {Name: ":scheme", Value: "http"},
			{Name: ":authority", Value: "shop.test"}, {Name: ":path", Value: x.Request.Target}}, x.Request.Header...)
		x.Stream = &session.Stream{ID: id}
	}
}

// TestGRPCMessageOffsets: a client-streaming gRPC call's messages reach
// the server at their recorded offsets within the stream, scaled by the
// speed (the server stamps each message as it arrives).
func TestGRPCMessageOffsets(t *testing.T) {
	offsets := []time.Duration{0, 40 * time.Millisecond, 100 * time.Millisecond, 160 * time.Millisecond}
	var mu sync.Mutex
	var got []time.Duration
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		var stamps []time.Duration
		hdr := make([]byte, 5)
		for {
			if _, err := io.ReadFull(r.Body, hdr); err != nil {
				break
			}
			if _, err := io.CopyN(io.Discard, r.Body, int64(binary.BigEndian.Uint32(hdr[1:]))); err != nil {
				break
			}
			stamps = append(stamps, time.Since(t0))
		}
		mu.Lock()
		got = stamps
		mu.Unlock()
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(200)
		w.Header().Set("Grpc-Status", "0")
	}), &http2.Server{})}
	go srv.Serve(ln)
	defer srv.Close()
	x := rec("s", "POST", "/pkg.Svc/Upload", 0, 200, onConn(1), h2Stream("s", 1), withHeader("content-type", "application/grpc"))
	g := &session.GRPC{HasStatus: true}
	for i, at := range offsets {
		msg := []byte(fmt.Sprintf("message %d", i))
		x.Request.Body = append(append(x.Request.Body, 0, 0, 0, 0, byte(len(msg))), msg...)
		g.Messages = append(g.Messages, session.Message{Size: uint32(len(msg)), At: int64(at)})
	}
	x.Stream.GRPC = g
	for _, speed := range []float64{1, 2} {
		rep := run(t, "http://"+ln.Addr().String(), source(x), WithPacer(Speed(speed)))
		mu.Lock()
		stamps := got
		mu.Unlock()
		if rep.Requests.Responses != 1 || len(rep.Errors) != 0 || len(stamps) != len(offsets) {
			t.Fatalf("%gx: %+v %v, server stamps %v", speed, rep.Requests, rep.Errors, stamps)
		}
		for i, at := range offsets {
			want := time.Duration(float64(at) / speed)
			// From the moment the server saw the stream open; the bound
			// is loose for a loaded machine (the 2 ms p99 is
			// measured on a quiet one).
			d := stamps[i] - want
			t.Logf("%gx: message %d at %v, due %v", speed, i, stamps[i], want)
			if d < -5*time.Millisecond || d > 30*time.Millisecond {
				t.Errorf("%gx: message %d at %v into the stream, want %v", speed, i, stamps[i], want)
			}
		}
	}
}

// TestReplayH2TLS replays an h2 recording against an https target: one
// HTTP/2 connection by ALPN for the recorded one, with the run's TLS
// settings (trust, SNI).
func TestReplayH2TLS(t *testing.T) {
	var protos sync.Map
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos.Store(r.Proto, true)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	var exs []*session.Exchange
	for i := range 4 {
		x := rec("s"+strconv.Itoa(i), "GET", "/"+strconv.Itoa(i), float64(i), float64(i)+5, onConn(1), h2Stream("s"+strconv.Itoa(i), uint32(2*i+1)))
		x.Conn.Protocol = session.ProtoH2
		exs = append(exs, x)
	}
	rep := run(t, srv.URL, source(exs...), WithPacer(Speed(10)), WithTLSConfig(&tls.Config{RootCAs: pool}))
	if rep.Requests.Responses != 4 || len(rep.Errors) != 0 || rep.Connections.HTTP2 != 1 || rep.Connections.Opened != 1 {
		t.Errorf("requests %+v, errors %v, connections %+v", rep.Requests, rep.Errors, rep.Connections)
	}
	if _, ok := protos.Load("HTTP/2.0"); !ok {
		t.Error("no request arrived as HTTP/2")
	}
	if _, ok := protos.Load("HTTP/1.1"); ok {
		t.Error("a request arrived as HTTP/1.1")
	}
}

// TestReplayHTTP2Auto: by default the same assembled h2c recording goes
// as recorded, on one HTTP/2 connection, gRPC call included, with its
// cookies.
func TestReplayHTTP2Auto(t *testing.T) {
	var mu sync.Mutex
	got := map[string]*http.Request{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.URL.Path] = r
		mu.Unlock()
		if r.Header.Get("Content-Type") == "application/grpc" {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			w.Write([]byte{0, 0, 0, 0, 0})
			w.Header().Set("Grpc-Status", "0")
		}
	}), &http2.Server{})}
	go srv.Serve(ln)
	defer srv.Close()
	rep := run(t, "http://"+ln.Addr().String(), source(h2cRecording(t)...), WithPacer(Max{}))
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || rep.Filtered.NeedsHTTP2 != 0 || len(rep.Errors) != 0 || rep.Connections.HTTP2 != 1 {
		t.Fatalf("%d requests arrived; filtered %+v, errors %v, connections %+v", len(got), rep.Filtered, rep.Errors, rep.Connections)
	}
	for path, r := range got {
		if r.ProtoMajor != 2 {
			t.Errorf("%s arrived as %s", path, r.Proto)
		}
	}
	// (Go's server joins the cookie fields, as RFC 9113 §8.2.3 says.)
	if c := got["/items"].Header.Get("Cookie"); c != "a=1; b=2" {
		t.Errorf("cookie %q, want the recorded two", c)
	}
}
