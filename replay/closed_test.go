package replay

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/reprise-tool/reprise/replay/wire"
)

// closingServer is a keep-alive HTTP/1.1 server with two faults a real
// one has: after answering /close-after it closes the connection without
// saying so (a keep-alive timeout shorter than the client's gap), and a
// request to /crash is read and its connection closed with no answer (a
// server that fell over while acting on it). It counts the requests that
// reached it, by method and path.
type closingServer struct {
	addr string
	mu   sync.Mutex
	seen map[string]int
}

func newClosingServer(t *testing.T) *closingServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &closingServer{addr: "http://" + l.Addr().String(), seen: map[string]int{}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *closingServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		s.mu.Lock()
		s.seen[req.Method+" "+req.URL.Path]++
		s.mu.Unlock()
		if req.URL.Path == "/crash" {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil || req.URL.Path == "/close-after" {
			return
		}
	}
}

func (s *closingServer) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[key]
}

// A connection the server closed while it sat in the pool is no error
// for the next request: a GET is sent again on a new connection, and a
// POST is not sent on it at all (the pool checks it first). A request the
// server read and then dropped is an error; a GET is tried twice, a POST
// once, for the server may have acted on it.
func TestClosedConnections(t *testing.T) {
	for _, tc := range []struct {
		name         string
		first        string // the path of the GET before
		method, path string // the second request, 50 ms later
		wantErr      bool
		wantSeen     int // times the server saw the second request
	}{
		{"get after the server closed", "/close-after", "GET", "/g", false, 1},
		{"post after the server closed", "/close-after", "POST", "/p", false, 1},
		{"put after the server closed", "/close-after", "PUT", "/u", false, 1},
		{"get the server dropped", "/a", "GET", "/crash", true, 2},
		{"post the server dropped", "/a", "POST", "/crash", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.method == "POST" && !tc.wantErr && !wire.Peeks {
				t.Skip("pooled connections are not peeked at on this system: the POST fails once")
			}
			srv := newClosingServer(t)
			second := rec("s", tc.method, tc.path, 50, 60)
			if tc.method != "GET" {
				withBody("text/plain", "x")(second)
			}
			var res results
			rep := run(t, srv.addr, source(rec("s", "GET", tc.first, 0, 10), second), WithObserver(&res))
			var got *Result
			for _, r := range res.get() {
				if r.Target == tc.path {
					got = &r
				}
			}
			if got == nil {
				t.Fatalf("no result for %s; report %+v", tc.path, rep.Requests)
			}
			if (got.Err != nil) != tc.wantErr {
				t.Errorf("%s %s: error %v, want error %v", tc.method, tc.path, got.Err, tc.wantErr)
			}
			if n := srv.count(tc.method + " " + tc.path); n != tc.wantSeen {
				t.Errorf("the server saw %s %s %d times, want %d", tc.method, tc.path, n, tc.wantSeen)
			}
		})
	}
}
