package capture

import (
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/reprise-tool/reprise/session/http2/h2test"
)

// TestFramingOverTCP sends each HTTP framing case as real TCP segments
// (handshake, data in 7-byte segments so every head and body is split,
// FINs) through the whole packet path and checks the exact exchanges and
// what was counted as unsupported.
func TestFramingOverTCP(t *testing.T) {
	type msg struct {
		client bool
		data   string
	}
	cl := func(s string) msg { return msg{true, s} }
	sv := func(s string) msg { return msg{false, s} }
	tests := []struct {
		name        string
		msgs        []msg
		serverFIN   bool
		want        []string
		unsupported string
	}{
		// Two exchanges on one connection.
		{name: "keep-alive", msgs: []msg{cl(reqA), sv(respA), cl(reqB), sv(respB)},
			want: []string{`1/0 GET /a "" -> 200 "hello"`, `1/1 POST /b "xyz" -> 201 "ok"`}},
		// Both requests before either response.
		{name: "pipelining", msgs: []msg{cl(reqA + reqB), sv(respA + respB)},
			want: []string{`1/0 GET /a "" -> 200 "hello"`, `1/1 POST /b "xyz" -> 201 "ok"`}},
		// Bodies counted by Content-Length (reqB and respA).
		{name: "content-length", msgs: []msg{cl(reqB), sv(respA)},
			want: []string{`1/0 POST /b "xyz" -> 200 "hello"`}},
		// Chunked both ways, with a trailer.
		{name: "chunked", msgs: []msg{
			cl("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n"),
			sv("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n")},
			want: []string{`1/0 POST /c "wxyz" -> 200 "abcde"`}},
		// A body that ends when the server closes.
		{name: "close-delimited", msgs: []msg{cl("GET /c HTTP/1.0\r\n\r\n"), sv("HTTP/1.0 200 OK\r\n\r\nto the end")}, serverFIN: true,
			want: []string{`1/0 GET /c "" -> 200 "to the end"`}},
		// The interim 100 Continue is skipped.
		{name: "100-continue", msgs: []msg{
			cl("PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"), sv("HTTP/1.1 100 Continue\r\n\r\n"),
			cl("abc"), sv("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")},
			want: []string{`1/0 PUT /u "abc" -> 201 ""`}},
		// HEAD: Content-Length but no body.
		{name: "HEAD", msgs: []msg{cl("HEAD /h HTTP/1.1\r\n\r\n"), sv("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"), cl(reqA), sv(respA)},
			want: []string{`1/0 HEAD /h "" -> 200 ""`, `1/1 GET /a "" -> 200 "hello"`}},
		// 204 and 304 have no body.
		{name: "204 and 304", msgs: []msg{cl("DELETE /d HTTP/1.1\r\n\r\n"), sv("HTTP/1.1 204 No Content\r\n\r\n"),
			cl("GET /e HTTP/1.1\r\nIf-None-Match: \"x\"\r\n\r\n"), sv("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"), cl(reqA), sv(respA)},
			want: []string{`1/0 DELETE /d "" -> 204 ""`, `1/1 GET /e "" -> 304 ""`, `1/2 GET /a "" -> 200 "hello"`}},
		// A WebSocket upgrade is noted and skipped.
		{name: "upgrade", msgs: []msg{cl(reqA), sv(respA),
			cl("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), sv("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"),
			cl("\x81\x82abcdxy")},
			want: []string{`1/0 GET /a "" -> 200 "hello"`}, unsupported: "websocket"},
		// A CONNECT tunnel is skipped once open.
		{name: "CONNECT", msgs: []msg{cl("CONNECT db:5432 HTTP/1.1\r\n\r\n"), sv("HTTP/1.1 200 OK\r\n\r\n"), cl("\x00\x00\x00\x08\x04\xd2\x16\x2f")},
			unsupported: "connect"},
		// h2c: the HTTP/2 preface with prior knowledge, then a stream.
		{name: "h2c", msgs: []msg{cl("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"), sv("\x00\x00\x00\x04\x01\x00\x00\x00\x00"),
			cl(h2test.Headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/h2")),
			sv(h2test.Headers(1, false, ":status", "200") + h2test.Data(1, true, "hi"))},
			want: []string{`1/0 GET /h2 "" -> 200 "hi"`}},
		// TLS: a ClientHello record.
		{name: "TLS", msgs: []msg{cl("\x16\x03\x01\x00\x31\x01\x00\x00\x2d\x03\x03" + strings.Repeat("r", 32)), sv("\x16\x03\x03\x00\x2a\x02\x00\x00\x26")},
			unsupported: "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrace(layers.LinkTypeEthernet)
			c := tr.conn("192.168.1.10:51000", "192.168.1.20:8080")
			c.handshake()
			for _, m := range tt.msgs {
				for _, s := range c.segments(m.client, m.data, 7) {
					c.emit(s)
					tr.tick(50 * time.Microsecond)
				}
				tr.tick(time.Millisecond)
			}
			if tt.serverFIN {
				c.fin(false)
				c.fin(true)
			}
			got, cnt := collect(t, &memSource{tr: tr})
			if strings.Join(lines(got), "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("exchanges:\n got %q\nwant %q", lines(got), tt.want)
			}
			var kinds []string
			for k := range cnt.Unsupported {
				kinds = append(kinds, k)
			}
			if strings.Join(kinds, ",") != tt.unsupported {
				t.Errorf("unsupported = %v, want %q", cnt.Unsupported, tt.unsupported)
			}
		})
	}
}
