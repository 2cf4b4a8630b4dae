package replay

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
)

// tlsConnServer is an https test server that counts the connections it
// accepts; noTickets makes it issue no session tickets.
func tlsConnServer(t *testing.T, noTickets bool) (*httptest.Server, *atomic.Int64) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the test's
	srv.TLS = &tls.Config{SessionTicketsDisabled: noTickets}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &opened
}

// caOf trusts srv's certificate, as --ca does.
func caOf(srv *httptest.Server) Option {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return WithTLSConfig(&tls.Config{RootCAs: pool})
}

// Each recorded connection to an https target makes one handshake;
// later ones resume the session when the target issues tickets (the
// replay keeps a session cache, as browsers do), and not when it issues
// none.
func TestConnectionsTLS(t *testing.T) {
	exs := func() []*session.Exchange {
		// three connections opened one after the other, each carrying two
		// requests: the first one's ticket is in the cache when the
		// second one opens.
		return []*session.Exchange{
			rec("a", "GET", "/a1", 0, 1, connID(1)),
			rec("a", "GET", "/a2", 5, 6, connID(1)),
			rec("b", "GET", "/b1", 120, 121, connID(2)),
			rec("b", "GET", "/b2", 125, 126, connID(2)),
			rec("c", "GET", "/c1", 240, 241, connID(3)),
			rec("c", "GET", "/c2", 245, 246, connID(3)),
		}
	}
	tests := []struct {
		name      string
		noTickets bool
		resumed   bool // want some handshakes resumed
	}{
		// Go's server issues TLS 1.3 tickets: connections 2 and 3 resume.
		{"tickets", false, true},
		// No tickets, no resumption: every handshake is a full one.
		{"no tickets", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, opened := tlsConnServer(t, tt.noTickets)
			rep := run(t, srv.URL, source(exs()...), caOf(srv), WithConnections(ConnectionsRecorded))
			c := rep.Connections
			if !rep.Completed || c == nil || c.TLS == nil {
				t.Fatalf("completed %v, connections %+v", rep.Completed, c)
			}
			tr := c.TLS
			if opened.Load() != 3 || c.Opened != 3 || tr.Handshakes != c.Opened || tr.Latency.Count != tr.Handshakes || tr.Failed != 0 {
				t.Errorf("server accepted %d, report opened %d; tls %+v: want 3 handshakes, none failed", opened.Load(), c.Opened, tr)
			}
			if tt.resumed && tr.Resumed == 0 || !tt.resumed && tr.Resumed != 0 {
				t.Errorf("%d of %d handshakes resumed", tr.Resumed, tr.Handshakes)
			}
			if tr.Versions["TLS 1.3"] != 3 || tr.ALPN["http/1.1"] != 3 {
				t.Errorf("versions %v, alpn %v", tr.Versions, tr.ALPN)
			}
			var b strings.Builder
			rep.WriteSummary(&b)
			if !strings.Contains(b.String(), "tls          3 handshakes") || !strings.Contains(b.String(), "TLS 1.3 3; alpn http/1.1 3") {
				t.Errorf("summary has no TLS line:\n%s", b.String())
			}
			js, _ := json.Marshal(rep)
			if !strings.Contains(string(js), `"tls":{"handshakes":3,`) {
				t.Errorf("JSON has no tls figures: %s", js)
			}
		})
	}
}

// A handshake with a target whose certificate the replay does not trust
// (a CA given that did not issue it; httptest's servers all share one
// certificate, so the wrong CA is an empty pool) is counted as a
// certificate failure, and no handshake as made.
func TestConnectionsTLSFailed(t *testing.T) {
	srv, _ := tlsConnServer(t, false)
	wrongCA := WithTLSConfig(&tls.Config{RootCAs: x509.NewCertPool()})
	rep := run(t, srv.URL, source(rec("a", "GET", "/a", 0, 1, connID(1))), wrongCA, WithConnections(ConnectionsRecorded))
	c := rep.Connections
	if c == nil || c.TLS == nil {
		t.Fatalf("connections %+v", c)
	}
	if tr := c.TLS; tr.Handshakes != 0 || tr.Failed == 0 || tr.FailedBy[wire.HandshakeCertificate] != tr.Failed {
		t.Errorf("tls %+v: want only certificate failures", tr)
	}
	var b strings.Builder
	rep.WriteSummary(&b)
	if !strings.Contains(b.String(), "failed (certificate ") {
		t.Errorf("summary does not name the failure:\n%s", b.String())
	}
}

// Shards' TLS figures add up; latency percentiles are the highest shard's.
func TestMergeConnectionsTLS(t *testing.T) {
	reps := []*Report{
		{Connections: &ConnReport{Opened: 3, TLS: &TLSReport{Handshakes: 3, Resumed: 2, Versions: map[string]uint64{"TLS 1.3": 3},
			ALPN: map[string]uint64{"h2": 3}, Latency: Histogram{Count: 3, Min: 0.5, Mean: 1, P50: 1, P99: 2, Max: 2}}}},
		{Connections: &ConnReport{Opened: 1}}, // an http shard
		{Connections: &ConnReport{Opened: 2, TLS: &TLSReport{Handshakes: 1, Failed: 1, FailedBy: map[string]uint64{"timeout": 1},
			Versions: map[string]uint64{"TLS 1.2": 1}, ALPN: map[string]uint64{"h2": 1}, Latency: Histogram{Count: 1, Min: 3, Mean: 3, P50: 3, P99: 3, Max: 3}}}},
	}
	m := mergeConnections(reps).TLS
	if m == nil || m.Handshakes != 4 || m.Resumed != 2 || m.Failed != 1 || m.FailedBy["timeout"] != 1 ||
		m.Versions["TLS 1.3"] != 3 || m.Versions["TLS 1.2"] != 1 || m.ALPN["h2"] != 4 ||
		m.Latency.Count != 4 || m.Latency.P50 != 3 || m.Latency.Min != 0.5 || m.Latency.Mean != 1.5 {
		t.Errorf("merged %+v", m)
	}
	if mergeConnections([]*Report{{Connections: &ConnReport{}}}).TLS != nil {
		t.Error("http shards merged into TLS figures")
	}
}
