package httpstream

import (
	"net/netip"
	"reflect"
	"testing"

	"golang.org/x/net/http2"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2/h2test"
)

// FuzzHTTPStream feeds arbitrary client and server bytes, cut into chunks
// and interleaved as the seed says, with gaps and ends, and checks the
// parser neither panics nor breaks its promises: every started request is
// emitted or dropped exactly once, bodies respect the cap and their size.
// A second Conn is fed the same bytes written into BodyRoom wherever it
// offers room, and must report the same.
func FuzzHTTPStream(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), uint32(0))
	f.Add([]byte("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n"), []byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nclose"), uint32(7))
	f.Add([]byte("GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\n"), []byte("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"), uint32(0x55))
	f.Add([]byte("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"), []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x00"), uint32(3))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), []byte("\x00\x00\x00\x04"), uint32(9))
	h2req := h2test.Headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/p.S/M", "content-type", "application/grpc") +
		"\x00\x00\x07\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x02hi"
	h2resp := h2test.Headers(1, false, ":status", "200", "content-type", "application/grpc") + h2test.Headers(1, true, "grpc-status", "0")
	f.Add([]byte(http2.ClientPreface+"\x00\x00\x00\x04\x00\x00\x00\x00\x00"+h2req), []byte("\x00\x00\x00\x04\x00\x00\x00\x00\x00"+h2resp), uint32(0x100))
	f.Add([]byte("GET /up HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n"+http2.ClientPreface), []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"+h2resp), uint32(0x200))
	f.Add([]byte(h2req), []byte(h2resp), uint32(0x301))
	f.Add([]byte("\x16\x03\x01\x00\x05hello"), []byte{}, uint32(1))
	f.Add([]byte("junk\r\nGET /x HTTP/1.0\r\n\r\n"), []byte("more\nHTTP/1.0 200 OK\r\n\r\nbody"), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, req, resp []byte, seed uint32) {
		r, rr := &recorder{}, &recorder{}
		client := Side0
		if seed&1 != 0 {
			client = Unknown
		}
		cfg := Config{
			Client:  client,
			Addr:    [2]netip.AddrPort{netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::1]:2")},
			MaxBody: int64(seed>>8) % 64,
		}
		cn, cr := New(cfg, r), New(cfg, rr)
		rng := seed | 1
		next := func() uint32 { // xorshift
			rng ^= rng << 13
			rng ^= rng >> 17
			rng ^= rng << 5
			return rng
		}
		ts := int64(1)
		for len(req) > 0 || len(resp) > 0 {
			v := next()
			side, buf := Side0, &req
			if v&1 != 0 {
				side, buf = Side1, &resp
			}
			if len(*buf) == 0 {
				continue
			}
			n := 1 + int(v>>1)%len(*buf)
			switch v >> 28 {
			case 0:
				cn.Gap(side, n, ts)
				cr.Gap(side, n, ts)
			case 1:
				cn.Gap(side, -1, ts)
				cr.Gap(side, -1, ts)
			default:
				cn.Feed(side, (*buf)[:n], ts)
				feedRoom(cr, side, (*buf)[:n], ts)
			}
			*buf = (*buf)[n:]
			ts++
		}
		if seed&2 != 0 {
			cn.End(Side0, ts, true)
			cn.End(Side1, ts, seed&4 != 0)
			cr.End(Side0, ts, true)
			cr.End(Side1, ts, seed&4 != 0)
		}
		cn.Close()
		cr.Close()
		if !reflect.DeepEqual(r, rr) {
			t.Fatalf("fed through BodyRoom: %+v, directly: %+v", rr, r)
		}
		if r.started != len(r.exchanges)+r.dropped {
			t.Fatalf("started %d, emitted %d, dropped %d", r.started, len(r.exchanges), r.dropped)
		}
		for i, x := range r.exchanges {
			checkBody(t, i, x.Request.Body, x.Request.BodySize, x.Flags&session.FlagRequestTruncated != 0, cn.cfg.MaxBody)
			checkBody(t, i, x.Response.Body, x.Response.BodySize, x.Flags&session.FlagResponseTruncated != 0, cn.cfg.MaxBody)
			if x.Flags&session.FlagNoResponse != 0 && x.Response.Status != 0 {
				t.Fatalf("exchange %d: no-response flag with status %d", i, x.Response.Status)
			}
		}
	})
}

// feedRoom feeds p to c the way the TLS reader does: what fits in the
// room c offers is written there and fed from there.
func feedRoom(c *Conn, side Side, p []byte, ts int64) {
	if room := c.BodyRoom(side); len(room) > 0 {
		n := copy(room, p)
		c.Feed(side, room[:n], ts)
		p = p[n:]
	}
	if len(p) > 0 {
		c.Feed(side, p, ts)
	}
}

func checkBody(t *testing.T, i int, body []byte, size int64, truncated bool, max int64) {
	t.Helper()
	if int64(len(body)) > max || int64(len(body)) > size || truncated != (size > max) {
		t.Fatalf("exchange %d: body %d bytes, size %d, truncated %v, cap %d", i, len(body), size, truncated, max)
	}
}
