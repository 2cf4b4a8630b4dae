//go:build linux

package replay

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// h2cNginx starts nginx serving h2c with prior knowledge, its /slow/
// answered by a Go upstream after 60 ms, so that streams in flight
// together overlap in its log.
func h2cNginx(t *testing.T) *nginx {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(60 * time.Millisecond)
		w.Write([]byte("slow\n"))
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	testkit.StartNginx(t, dir, addr, fmt.Sprintf(`server {
		listen %s http2;
		keepalive_requests 100000;
		location / { return 200 "ok\n"; }
		location /slow/ { proxy_pass http://%s; }
	}`, addr, ln.Addr()), "$connection $connection_requests $msec $request_time $request_uri")
	return &nginx{url: "http://" + addr, log: filepath.Join(dir, "access.log")}
}

// maxOverlap is the most log entries of one connection in flight at once.
func maxOverlap(lines []logLine, ends map[int]time.Time) map[uint64]int {
	type ev struct {
		at time.Time
		d  int
	}
	evs := map[uint64][]ev{}
	for i, l := range lines {
		evs[l.conn] = append(evs[l.conn], ev{l.at, 1}, ev{ends[i], -1})
	}
	out := map[uint64]int{}
	for c, es := range evs {
		slices.SortFunc(es, func(a, b ev) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.d - b.d
		})
		cur := 0
		for _, e := range es {
			cur += e.d
			out[c] = max(out[c], cur)
		}
	}
	return out
}

// TestNginxH2C replays an h2c recording, two connections whose streams
// overlapped (four at once on one, two on the other), against nginx
// serving h2c: nginx's $connection and $connection_requests show the
// recorded connections, and the streams of each overlap as recorded.
func TestNginxH2C(t *testing.T) {
	n := h2cNginx(t)
	var exs []*session.Exchange
	// Connection 1: four streams at once, twice; connection 2: two.
	for i := range 8 {
		at := float64(i/4) * 400 // apart by more than 60 ms even at 5x
		exs = append(exs, rec(fmt.Sprintf("a%d", i), "GET", fmt.Sprintf("/slow/a%d", i), at, at+60, onConn(1), h2Stream(fmt.Sprintf("a%d", i), uint32(2*i+1))))
	}
	for i := range 2 {
		exs = append(exs, rec(fmt.Sprintf("b%d", i), "GET", fmt.Sprintf("/slow/b%d", i), 5, 65, onConn(2), h2Stream(fmt.Sprintf("b%d", i), uint32(2*i+1))))
	}
	slices.SortStableFunc(exs, func(a, b *session.Exchange) int { return int(a.Timing.RequestStart - b.Timing.RequestStart) })
	for _, speed := range []float64{1, 5} {
		from := n.size()
		rep := run(t, n.url, session.NewSliceSource(exs...), WithPacer(Speed(speed)))
		if rep.Errors != nil && len(rep.Errors) > 0 {
			t.Fatalf("%gx: errors %v", speed, rep.Errors)
		}
		lines, _ := n.since(t, from)
		if got := perConn(lines); !slices.Equal(got, []int{2, 8}) {
			t.Errorf("%gx: requests per connection %v, want [2 8] as recorded", speed, got)
		}
		if c := rep.Connections; c == nil || c.HTTP2 != 2 {
			t.Errorf("%gx: connections %+v", speed, rep.Connections)
		}
		ends := map[int]time.Time{}
		for i, l := range lines {
			ends[i] = l.at.Add(55 * time.Millisecond) // each took the upstream's 60 ms
		}
		var most []int
		for _, v := range maxOverlap(lines, ends) {
			most = append(most, v)
		}
		slices.Sort(most)
		if !slices.Equal(most, []int{2, 4}) {
			t.Errorf("%gx: most streams at once per connection %v, want [2 4] as recorded", speed, most)
		}
	}
}
