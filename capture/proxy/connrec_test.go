package proxy

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// TestConnRecords checks the proxy's connection records against what the
// test did: a keep-alive connection of three requests the client closed,
// a Connection: close request the upstream closed after its response, and
// a connection still open when the proxy stopped.
func TestConnRecords(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer srv.Close()
	r := startProxy(t, srv.URL)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, br *bufio.Reader, path, extra string) {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	before := time.Now().UnixNano()
	c1, br1 := dial()
	for i := range 3 {
		get(c1, br1, fmt.Sprint("/k", i), "")
	}
	c1.Close()
	c2, br2 := dial()
	get(c2, br2, "/close", "Connection: close\r\n")
	if _, err := br2.ReadByte(); err != io.EOF { // the upstream's close, relayed
		t.Fatalf("after Connection: close the client read %v, want EOF", err)
	}
	c2.Close()
	c3, br3 := dial()
	get(c3, br3, "/open", "")
	// c1 and c2 are done with on the proxy's side before it stops (which
	// would end them itself): wait for their records, 5 s at most.
	var conns []session.ConnInfo
	for deadline := time.Now().Add(5 * time.Second); len(conns) < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		conns = append(conns, r.p.TakeConns()...)
	}
	xs := r.stop(t)
	c3.Close()
	conns = append(conns, r.p.TakeConns()...)
	if len(xs) != 5 || len(conns) != 3 {
		t.Fatalf("recorded %d exchanges and %d connections, want 5 and 3: %+v", len(xs), len(conns), conns)
	}
	slices.SortFunc(conns, func(a, b session.ConnInfo) int { return cmp.Compare(a.ID, b.ID) })
	perConn := map[uint64]int{}
	for _, x := range xs {
		perConn[x.Conn.ID]++
	}
	want := []struct {
		by session.Party
		n  int
	}{{session.PartyClient, 3}, {session.PartyServer, 1}, {session.PartyNone, 1}}
	for i, c := range conns {
		if c.ClosedBy != want[i].by || c.Exchanges != want[i].n || perConn[c.ID] != c.Exchanges || c.Reset {
			t.Errorf("connection %d: closed by %v (reset %v) after %d exchanges (%d recorded), want %v after %d",
				i, c.ClosedBy, c.Reset, c.Exchanges, perConn[c.ID], want[i].by, want[i].n)
		}
		if c.Opened < before || c.Closed < c.Opened || !c.Client.IsValid() || c.Server.String() != srv.Listener.Addr().String() {
			t.Errorf("connection %d: %+v", i, c)
		}
	}
}

// An HTTP/2 connection's record: its streams counted as its exchanges,
// and the client's close (the transport's CloseIdleConnections) seen.
func TestConnRecordsH2(t *testing.T) {
	up := h2cUpstream(t)
	r := startProxy(t, up.URL)
	cl := h2cClient()
	for i := range 3 {
		resp, err := cl.Get(fmt.Sprintf("http://%s/s%d", r.addr, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cl.CloseIdleConnections()
	var conns []session.ConnInfo
	for deadline := time.Now().Add(5 * time.Second); len(conns) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		conns = r.p.TakeConns()
	}
	xs := r.stop(t)
	if len(conns) != 1 || len(xs) != 3 {
		t.Fatalf("%d connection records and %d exchanges, want 1 and 3: %+v", len(conns), len(xs), conns)
	}
	if c := conns[0]; c.ClosedBy != session.PartyClient || c.Exchanges != 3 || c.ID != xs[0].Conn.ID {
		t.Errorf("record %+v, want closed by the client after 3 exchanges", c)
	}
}
