package summary

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// A recording's connection records show in the summary and its text.
func TestConnsSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.rpz")
	w, err := session.Create(path, session.Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	const t0 = int64(1_700_000_000_000_000_000)
	conns := []session.ConnInfo{
		{ID: 1, Opened: t0, Closed: t0 + 10e6, ClosedBy: session.PartyClient, Exchanges: 4},
		{ID: 2, Opened: t0, Closed: t0 + 30e6, ClosedBy: session.PartyServer, Reset: true, Exchanges: 1},
		{ID: 3, Opened: t0, Closed: t0 + 50e6, Exchanges: 2},
	}
	for i := range conns {
		ex := &session.Exchange{Conn: session.Conn{ID: conns[i].ID}, Request: session.Request{Method: "GET", Target: "/", Proto: "HTTP/1.1"}, Timing: session.Timing{RequestStart: t0 + 1}}
		if err := w.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteConn(&conns[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Files(context.Background(), []string{path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Conns{Connections: 3, ClosedByClient: 1, ClosedByServer: 1, Open: 1, Resets: 1,
		Exchanges: Spread{P50: 2, P99: 4, Max: 4}, DurationMS: Spread{P50: 10, P99: 30, Max: 30}} // nearest rank: the median of 10 and 30 is 10
	if s.Connections == nil || *s.Connections != want {
		t.Fatalf("connections %+v, want %+v", s.Connections, want)
	}
	var b strings.Builder
	s.WriteText(&b)
	if !strings.Contains(b.String(), "connections  3: closed 1 by the client, 1 by the server (1 resets), 1 left open; per connection 2 exchanges p50, 4 max; lasted 10.0 ms p50, 30.0 ms max") {
		t.Errorf("text:\n%s", b.String())
	}
}
