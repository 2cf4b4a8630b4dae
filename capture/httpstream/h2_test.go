package httpstream

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/reprise-tool/reprise/session/http2/h2test"
	"golang.org/x/net/http2"
)

// split cuts each step's data into pieces of n bytes.
func split(steps []step, n int) []step {
	var out []step
	for _, st := range steps {
		for len(st.data) > n {
			p := st
			p.data = st.data[:n]
			out = append(out, p)
			st.data = st.data[n:]
		}
		out = append(out, st)
	}
	return out
}

// TestH2Detection: HTTP/2 found by the preface, by an h2c upgrade and by
// frames on a connection joined mid-way, whole and in 7-byte pieces.
func TestH2Detection(t *testing.T) {
	req := h2test.Headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/h2")
	resp := h2test.Headers(1, false, ":status", "200") + h2test.Data(1, true, "hi")
	settings := "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
	tests := []struct {
		name  string
		cfg   Config
		steps []step
		want  string
	}{
		// Prior knowledge: the preface, SETTINGS, a stream.
		{"preface", Config{Client: Side0, StartSeen: true},
			[]step{c(http2.ClientPreface+settings, 1), s(settings, 2), c(req, 3), s(resp, 4)}, "GET /h2 200 hi"},
		// Roles unknown until the preface says who the client is.
		{"preface roles unknown", Config{Client: Unknown, StartSeen: true},
			[]step{c(http2.ClientPreface+settings+req, 1), s(settings+resp, 4)}, "GET /h2 200 hi"},
		// The upgrade request becomes stream 1.
		{"upgrade", Config{Client: Side0, StartSeen: true},
			[]step{c("GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", 1),
				s("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"+settings+resp, 2),
				c(http2.ClientPreface+settings, 3)}, "GET /up 200 hi"},
		// Joined mid-way: the first bytes are frames.
		{"mid-connection", Config{Client: Side0},
			[]step{c(settings+req, 1), s(settings+resp, 2)}, "GET /h2 200 hi"},
		// Bytes decrypted from TLS: HTTP/2 there is h2 (ALPN).
		{"TLS", Config{Client: Side0, StartSeen: true, TLS: true},
			[]step{c(http2.ClientPreface+settings, 1), s(settings, 2), c(req, 3), s(resp, 4)}, "GET /h2 200 hi"},
	}
	for _, tt := range tests {
		for _, n := range []int{1 << 20, 7} {
			if n == 7 && !tt.cfg.StartSeen {
				continue // mid-way, frames are recognised in a first segment of 9 bytes or more
			}
			r := run(t, tt.cfg, split(tt.steps, n))
			if len(r.exchanges) != 1 || len(r.unsupported) != 0 {
				t.Fatalf("%s/%d: %d exchanges, unsupported %v", tt.name, n, len(r.exchanges), r.unsupported)
			}
			x := r.exchanges[0]
			proto := "h2c"
			if tt.cfg.TLS {
				proto = "h2"
			}
			if got := x.Request.Method + " " + x.Request.Target + " " + strconv.Itoa(x.Response.Status) + " " + string(x.Response.Body); got != tt.want || x.Conn.Protocol.String() != proto {
				t.Errorf("%s/%d: %q on %v, want %q", tt.name, n, got, x.Conn.Protocol, tt.want)
			}
		}
	}
}

// TestH2GuessedRolesCorrected: joined mid-way with the roles unknown and
// the server on the higher port, the port guess is wrong; the first
// request header block corrects it before anything is recorded.
func TestH2GuessedRolesCorrected(t *testing.T) {
	req := h2test.Headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/h2")
	resp := h2test.Headers(1, false, ":status", "200") + h2test.Data(1, true, "hi")
	r := &recorder{}
	cli, srv := netip.MustParseAddrPort("10.0.0.1:4000"), netip.MustParseAddrPort("10.0.0.2:50051")
	cn := New(Config{Client: Unknown, Addr: [2]netip.AddrPort{cli, srv}, MaxBody: 1 << 10}, r)
	cn.Feed(Side0, []byte(h2test.Settings+req), 1)
	cn.Feed(Side1, []byte(h2test.Settings+resp), 2)
	cn.Close()
	if len(r.exchanges) != 1 || len(r.unsupported) != 0 {
		t.Fatalf("%d exchanges, unsupported %v", len(r.exchanges), r.unsupported)
	}
	x := r.exchanges[0]
	if x.Request.Target != "/h2" || x.Response.Status != 200 || string(x.Response.Body) != "hi" || x.Conn.Client != cli || x.Conn.Server != srv {
		t.Errorf("%s %d %q from %v to %v", x.Request.Target, x.Response.Status, x.Response.Body, x.Conn.Client, x.Conn.Server)
	}
}
