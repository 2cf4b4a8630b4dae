package replay

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// connID puts a recorded exchange on recorded connection id, keeping its
// session (see onConn).
func connID(id uint64) func(*session.Exchange) {
	return func(ex *session.Exchange) { ex.Conn.ID = id }
}

// connCounter is a test server that counts the connections it accepts
// and the requests on each.
type connCounter struct {
	*httptest.Server
	opened atomic.Int64
}

func newConnCounter(t *testing.T) *connCounter {
	c := &connCounter{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.opened.Add(1)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

// Each recorded connection is replayed as one connection of its own, a
// clone's on connections of its own again; pooled shares connections.
func TestRecordedConnections(t *testing.T) {
	exs := func() []*session.Exchange {
		return []*session.Exchange{
			rec("a", "GET", "/a1", 0, 1, connID(1)),
			rec("b", "GET", "/b1", 0.5, 1.5, connID(2)),
			rec("a", "GET", "/a2", 2, 3, connID(1)),
			rec("c", "GET", "/c1", 2.5, 3, connID(3), withHeader("Connection", "close")),
			rec("a", "GET", "/a3", 4, 5, connID(1)),
			rec("b", "GET", "/b2", 4.5, 5, connID(2)),
		}
	}
	tests := []struct {
		name       string
		opts       []Option
		wantOpened int64 // connections the server accepted
		wantReused uint64
	}{
		// three recorded connections, four requests reusing one
		{"recorded", nil, 3, 3},
		// each clone has its own three
		{"scale 2", []Option{WithScale(2)}, 6, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newConnCounter(t)
			rep := run(t, srv.URL, source(exs()...), append(tt.opts, WithPacer(Speed(5)))...)
			c := rep.Connections
			if !rep.Completed || c == nil {
				t.Fatalf("completed %v, connections %+v", rep.Completed, c)
			}
			if got := srv.opened.Load(); got != tt.wantOpened || c.Opened != uint64(tt.wantOpened) || c.Reused != tt.wantReused {
				t.Errorf("server accepted %d connections, report %+v; want %d opened, %d reused", got, c, tt.wantOpened, tt.wantReused)
			}
			if c.ClosedByClient+c.ClosedByServer != c.Opened {
				t.Errorf("closed %d by the client and %d by the server of %d opened", c.ClosedByClient, c.ClosedByServer, c.Opened)
			}
			if c.Mode != ConnectionsRecorded || c.Connect.Count != c.Opened {
				t.Errorf("mode %q, %d connect times", c.Mode, c.Connect.Count)
			}
		})
	}
	t.Run("pooled", func(t *testing.T) {
		srv := newConnCounter(t)
		rep := run(t, srv.URL, source(exs()...), WithPacer(Speed(5)), WithConnections(ConnectionsPooled))
		var b strings.Builder
		rep.WriteSummary(&b)
		if !strings.Contains(b.String(), "connections  pooled") {
			t.Errorf("summary does not say pooled:\n%s", b.String())
		}
	})
	if _, err := New("http://127.0.0.1:1", WithConnections("shared")); err == nil {
		t.Error("WithConnections took an unknown mode")
	}
}

// pipeServer reads requests on one connection until it has want of them
// or a second passes, then answers each; it reports how many it had read
// before its first answer.
func pipeServer(t *testing.T, want int) (addr string, before <-chan int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan int, 1)
	addr = testkit.ServeOne(t, l, func(c net.Conn) {
		br := bufio.NewReader(c)
		n := 0
		c.SetReadDeadline(time.Now().Add(time.Second))
		for n < want {
			if _, err := http.ReadRequest(br); err != nil {
				break
			}
			n++
		}
		ch <- n
		c.SetReadDeadline(time.Time{})
		for i := 0; i < want; i++ {
			if i >= n {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	return addr, ch
}

// Requests that were pipelined in the recording (each started before the
// previous response ended) are pipelined on the replayed connection; under
// --max-inflight 1 they go one by one, without a deadlock.
func TestPipelinedConnection(t *testing.T) {
	exs := func() *session.SliceSource {
		return source(
			rec("p", "GET", "/1", 0, 3, connID(7)),
			rec("p", "GET", "/2", 0.1, 3.1, connID(7)),
			rec("p", "GET", "/3", 0.2, 3.2, connID(7)),
		)
	}
	addr, before := pipeServer(t, 3)
	rep := run(t, "http://"+addr, exs(), WithPacer(Speed(1)))
	if n := <-before; n != 3 || !rep.Completed {
		t.Errorf("the server read %d requests before answering (completed %v), want 3 pipelined", n, rep.Completed)
	}
	addr, before = pipeServer(t, 3)
	rep = run(t, "http://"+addr, exs(), WithPacer(Speed(1)), WithMaxInFlight(1))
	if n := <-before; n != 1 || !rep.Completed || rep.Connections.InFlightWaits == 0 {
		t.Errorf("under --max-inflight 1 the server read %d before answering, completed %v, %+v", n, rep.Completed, rep.Connections)
	}
	var b strings.Builder
	rep.WriteSummary(&b)
	if !strings.Contains(b.String(), "max-inflight 1 bound") {
		t.Errorf("summary does not say the cap bound:\n%s", b.String())
	}
}

// closes reads Connection and the protocol version as the recorded client
// and server meant them.
func TestCloses(t *testing.T) {
	tests := []struct {
		name               string
		reqProto, resProto string
		req, res           session.Headers
		wantReq, wantAfter bool
	}{
		// HTTP/1.1 keeps the connection
		{"keep-alive", "HTTP/1.1", "HTTP/1.1", nil, nil, false, false},
		// the client asked to close
		{"client close", "HTTP/1.1", "HTTP/1.1", session.Headers{{Name: "Connection", Value: "close"}}, nil, true, true},
		// the server said close
		{"server close", "HTTP/1.1", "HTTP/1.1", nil, session.Headers{{Name: "connection", Value: "Close"}}, false, true},
		// HTTP/1.0 without keep-alive closes
		{"http/1.0", "HTTP/1.0", "HTTP/1.0", nil, nil, true, true},
		// HTTP/1.0 with keep-alive keeps it
		{"http/1.0 keep-alive", "HTTP/1.0", "HTTP/1.1", session.Headers{{Name: "Connection", Value: "Keep-Alive"}}, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := &session.Exchange{Request: session.Request{Proto: tt.reqProto, Header: tt.req}, Response: session.Response{Proto: tt.resProto, Header: tt.res}}
			if tt.name == "client close" {
				ex.Response.Header = session.Headers{{Name: "Connection", Value: "close"}}
			}
			req, after := closes(ex)
			if req != tt.wantReq || after != tt.wantAfter {
				t.Errorf("closes = %v, %v; want %v, %v", req, after, tt.wantReq, tt.wantAfter)
			}
		})
	}
}

// A merged report's connections are the shards' summed, with the
// highest shard's connect percentiles.
func TestMergeConnections(t *testing.T) {
	reps := []*Report{
		{Connections: &ConnReport{Mode: ConnectionsRecorded, Opened: 3, Reused: 10, ClosedByClient: 2, ClosedByServer: 1, MaxInFlight: 64,
			Connect: Histogram{Count: 3, Min: 0.1, Mean: 0.2, P50: 0.2, P99: 0.3, Max: 0.3}}},
		{}, // a shard with no connection figures
		{Connections: &ConnReport{Mode: ConnectionsRecorded, Opened: 1, Reused: 2, ClosedByClient: 1, InFlightWaits: 5, MaxInFlight: 64,
			Connect: Histogram{Count: 1, Min: 0.5, Mean: 0.5, P50: 0.5, P99: 0.5, Max: 0.5}}},
	}
	m := mergeConnections(reps)
	if m == nil || m.Opened != 4 || m.Reused != 12 || m.ClosedByClient != 3 || m.ClosedByServer != 1 || m.InFlightWaits != 5 ||
		m.Connect.Count != 4 || m.Connect.Min != 0.1 || m.Connect.P99 != 0.5 || m.Connect.Mean != 0.275 {
		t.Errorf("merged %+v", m)
	}
	if mergeConnections([]*Report{{}}) != nil {
		t.Error("reports without connection figures merged into some")
	}
}

// TestPipelinedBegan checks the pipelining test on what the line keeps of
// its last request: the recorded response's start, or its end when the
// recording does not know the start, or neither.
func TestPipelinedBegan(t *testing.T) {
	for _, c := range []struct {
		name              string
		respStart, recEnd int64
		next              int64 // the next request's start
		want              bool
	}{
		{"sent before the response began", 100, 200, 50, true},
		{"sent after the response began, before it ended", 100, 200, 150, false},
		{"no response start: its end decides", 0, 200, 150, true},
		{"no response start: after its end", 0, 200, 250, false},
		{"no timing", 0, 0, 1, false},
	} {
		prev := &task{it: &item{ex: &session.Exchange{}}}
		prev.it.ex.Timing.ResponseStart = c.respStart
		prev.rec.End = c.recEnd
		if got := pipelined(began(prev), &item{start: c.next}); got != c.want {
			t.Errorf("%s: pipelined %v, want %v", c.name, got, c.want)
		}
	}
}
