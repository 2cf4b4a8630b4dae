package httpstream

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// recorder collects what a Conn reports.
type recorder struct {
	started     int
	exchanges   []*session.Exchange
	dropped     int
	unsupported []string
	orphans     int
}

func (r *recorder) RequestStarted(*session.Exchange) { r.started++ }
func (r *recorder) Exchange(x *session.Exchange)     { r.exchanges = append(r.exchanges, x) }
func (r *recorder) Dropped(*session.Exchange)        { r.dropped++ }
func (r *recorder) Unsupported(k string)             { r.unsupported = append(r.unsupported, k) }
func (r *recorder) Orphan()                          { r.orphans++ }

// step is one event fed to a Conn: data from a side, a gap, or an end.
type step struct {
	side Side
	data string
	gap  int  // >0: a gap of this many bytes; -1: unknown
	end  bool // FIN
	ts   int64
}

func c(data string, ts int64) step { return step{side: Side0, data: data, ts: ts} }
func s(data string, ts int64) step { return step{side: Side1, data: data, ts: ts} }

// brief is the part of an exchange the tests compare.
type brief struct {
	Index    int
	Req      string // "METHOD target"
	ReqBody  string
	ReqSize  int64
	Status   int
	RespBody string
	RespSize int64
	Flags    session.Flags
	Timing   session.Timing
}

func briefOf(x *session.Exchange) brief {
	return brief{
		Index: x.Index, Req: x.Request.Method + " " + x.Request.Target, ReqBody: string(x.Request.Body), ReqSize: x.Request.BodySize,
		Status: x.Response.Status, RespBody: string(x.Response.Body), RespSize: x.Response.BodySize, Flags: x.Flags, Timing: x.Timing,
	}
}

func run(t *testing.T, cfg Config, steps []step) *recorder {
	t.Helper()
	r := &recorder{}
	cfg.Addr = [2]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.1:8080")}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	cn := New(cfg, r)
	for _, st := range steps {
		switch {
		case st.gap != 0:
			cn.Gap(st.side, st.gap, st.ts)
		case st.end:
			cn.End(st.side, st.ts, true)
		default:
			cn.Feed(st.side, []byte(st.data), st.ts)
		}
	}
	cn.Close()
	if r.started != len(r.exchanges)+r.dropped {
		t.Errorf("started %d requests, emitted %d and dropped %d", r.started, len(r.exchanges), r.dropped)
	}
	return r
}

func TestFraming(t *testing.T) {
	known := Config{Client: Side0, StartSeen: true}
	tests := []struct {
		name        string
		cfg         Config
		steps       []step
		want        []brief
		unsupported []string
	}{
		{
			// Two requests one after the other on one keep-alive connection.
			name: "keep-alive",
			cfg:  known,
			steps: []step{
				c("GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 1), s("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 2),
				c("GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 3), s("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 4),
			},
			want: []brief{
				{Index: 0, Req: "GET /a", Status: 200, RespBody: "hi", RespSize: 2, Timing: tm(1, 1, 2, 2)},
				{Index: 1, Req: "GET /b", Status: 404, Timing: tm(3, 3, 4, 4)},
			},
		},
		{
			// Three requests sent before any response: matched in order.
			name: "pipelining",
			cfg:  known,
			steps: []step{
				c("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n", 1),
				s("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n2", 2),
				s("HTTP/1.1 202 Accepted\r\nContent-Length: 1\r\n\r\n3", 3),
			},
			want: []brief{
				{Index: 0, Req: "GET /1", Status: 200, RespBody: "1", RespSize: 1, Timing: tm(1, 1, 2, 2)},
				{Index: 1, Req: "GET /2", Status: 201, RespBody: "2", RespSize: 1, Timing: tm(1, 1, 2, 2)},
				{Index: 2, Req: "GET /3", Status: 202, RespBody: "3", RespSize: 1, Timing: tm(1, 1, 3, 3)},
			},
		},
		{
			// Bodies split across chunks of data, counted by Content-Length.
			name: "content-length",
			cfg:  known,
			steps: []step{
				c("POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234", 1), c("56789", 2),
				s("HTTP/1.1 200 OK\r\nContent-", 3), s("Length: 3\r\n\r\nab", 4), s("c", 5),
			},
			want: []brief{{Req: "POST /p", ReqBody: "0123456789", ReqSize: 10, Status: 200, RespBody: "abc", RespSize: 3, Timing: tm(1, 2, 3, 5)}},
		},
		{
			// Chunked bodies are stored de-chunked; trailers are kept.
			name: "chunked",
			cfg:  known,
			steps: []step{
				c("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1),
				s("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel", 2), s("lo\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n", 3),
			},
			want: []brief{{Req: "POST /c", ReqBody: "abc", ReqSize: 3, Status: 200, RespBody: "hello world", RespSize: 11, Timing: tm(1, 1, 2, 3)}},
		},
		{
			// A response without length ends when the server closes.
			name: "close-delimited",
			cfg:  known,
			steps: []step{
				c("GET /old HTTP/1.0\r\n\r\n", 1), s("HTTP/1.0 200 OK\r\n\r\nall of", 2), s(" it", 3), {side: Side1, end: true, ts: 4},
			},
			want: []brief{{Req: "GET /old", Status: 200, RespBody: "all of it", RespSize: 9, Timing: tm(1, 1, 2, 3)}},
		},
		{
			// The 100 Continue interim response is skipped, not matched.
			name: "100-continue",
			cfg:  known,
			steps: []step{
				c("PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", 1),
				s("HTTP/1.1 100 Continue\r\n\r\n", 2), c("data", 3), s("HTTP/1.1 204 No Content\r\n\r\n", 4),
			},
			want: []brief{{Req: "PUT /u", ReqBody: "data", ReqSize: 4, Status: 204, Timing: tm(1, 3, 4, 4)}},
		},
		{
			// A HEAD response has Content-Length but no body.
			name: "HEAD",
			cfg:  known,
			steps: []step{
				c("HEAD /h HTTP/1.1\r\n\r\n", 1), s("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 2),
				c("GET /g HTTP/1.1\r\n\r\n", 3), s("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 4),
			},
			want: []brief{
				{Index: 0, Req: "HEAD /h", Status: 200, Timing: tm(1, 1, 2, 2)},
				{Index: 1, Req: "GET /g", Status: 200, RespBody: "x", RespSize: 1, Timing: tm(3, 3, 4, 4)},
			},
		},
		{
			// 204 and 304 have no body whatever the headers say.
			name: "204 and 304",
			cfg:  known,
			steps: []step{
				c("DELETE /d HTTP/1.1\r\n\r\nGET /e HTTP/1.1\r\n\r\n", 1),
				s("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", 2),
			},
			want: []brief{
				{Index: 0, Req: "DELETE /d", Status: 204, Timing: tm(1, 1, 2, 2)},
				{Index: 1, Req: "GET /e", Status: 304, Timing: tm(1, 1, 2, 2)},
			},
		},
		{
			// A WebSocket upgrade: the exchange before it is kept, the
			// handshake and the frames after it are skipped and counted.
			name: "websocket upgrade",
			cfg:  known,
			steps: []step{
				c("GET /a HTTP/1.1\r\n\r\n", 1), s("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2),
				c("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 3),
				s("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", 4),
				c("\x81\x85abcdefghi", 5),
			},
			want:        []brief{{Index: 0, Req: "GET /a", Status: 200, Timing: tm(1, 1, 2, 2)}},
			unsupported: []string{KindWebSocket},
		},
		{
			// A CONNECT tunnel is skipped once established.
			name: "CONNECT",
			cfg:  known,
			steps: []step{
				c("CONNECT example.com:443 HTTP/1.1\r\n\r\n", 1), s("HTTP/1.1 200 Connection established\r\n\r\n", 2),
				c("\x16\x03\x01\x00\x10hello", 3),
			},
			unsupported: []string{KindConnect},
		},
		{
			// HTTP/2 with prior knowledge: the connection preface hands
			// the connection to session/http2 (h2_test.go has streams);
			// SETTINGS alone make no exchange and nothing unsupported.
			name:  "h2 prior knowledge",
			cfg:   known,
			steps: []step{c("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00", 1), s("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 2)},
		},
		{
			// An h2c upgrade: the request becomes HTTP/2 stream 1, whose
			// response never came here.
			name: "h2c upgrade",
			cfg:  known,
			steps: []step{
				c("GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n", 1),
				s("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00", 2),
			},
			want: []brief{{Req: "GET /", Flags: session.FlagNoResponse, Timing: tm(1, 1, 0, 0)}},
		},
		{
			// A TLS ClientHello is detected at the first byte.
			name:        "TLS",
			cfg:         known,
			steps:       []step{c("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1), s("\x16\x03\x03\x00\x7a\x02", 2)},
			unsupported: []string{KindTLS},
		},
		{
			// Roles unknown (no SYN), and the capture starts inside a
			// response body: the first status line and request line decide.
			name: "mid-stream start",
			cfg:  Config{Client: Unknown},
			steps: []step{
				s("tail of an earlier body\r\n", 1),
				c("GET /next HTTP/1.1\r\n\r\n", 2), s("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 3),
			},
			want: []brief{{Req: "GET /next", Status: 200, RespBody: "ok", RespSize: 2, Timing: tm(2, 2, 3, 3)}},
		},
		{
			// Roles unknown and the response side speaks first: the side
			// that sends a status line is the server.
			name: "roles from status line",
			cfg:  Config{Client: Unknown},
			steps: []step{
				s("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA", 1),
				c("GET /x HTTP/1.1\r\n\r\n", 2), s("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB", 3),
			},
			want: []brief{{Req: "GET /x", Status: 200, RespBody: "B", RespSize: 1, Timing: tm(2, 2, 3, 3)}},
		},
		{
			// Lost bytes inside a counted body: the framing holds, the
			// exchange is flagged and the next one is clean.
			name: "gap in body",
			cfg:  known,
			steps: []step{
				c("GET /a HTTP/1.1\r\n\r\n", 1), s("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab", 2),
				{side: Side1, gap: 2, ts: 3}, s("ef", 3),
				c("GET /b HTTP/1.1\r\n\r\n", 4), s("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz", 5),
			},
			want: []brief{
				{Index: 0, Req: "GET /a", Status: 200, RespBody: "ab\x00\x00ef", RespSize: 6, Flags: session.FlagResponseGap, Timing: tm(1, 1, 2, 3)},
				{Index: 1, Req: "GET /b", Status: 200, RespBody: "z", RespSize: 1, Timing: tm(4, 4, 5, 5)},
			},
		},
		{
			// Lost bytes in a response head: that exchange has no response,
			// the parser resyncs on the next status line.
			name: "gap in head",
			cfg:  known,
			steps: []step{
				c("GET /a HTTP/1.1\r\n\r\n", 1), s("HTTP/1.1 200 OK\r\nContent-Le", 2),
				{side: Side1, gap: 30, ts: 3}, s("xyz\r\nmore junk", 3),
				c("GET /b HTTP/1.1\r\n\r\n", 4), s("\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz", 5),
			},
			want: []brief{
				{Index: 0, Req: "GET /a", Flags: session.FlagResponseGap | session.FlagNoResponse, Timing: tm(1, 1, 0, 0)},
				{Index: 1, Req: "GET /b", Status: 200, RespBody: "z", RespSize: 1, Timing: tm(4, 4, 5, 5)},
			},
		},
		{
			// A request without a response when the connection ends.
			name:  "no response",
			cfg:   known,
			steps: []step{c("GET /a HTTP/1.1\r\n\r\n", 1), {side: Side0, end: true, ts: 2}, {side: Side1, end: true, ts: 2}},
			want:  []brief{{Req: "GET /a", Flags: session.FlagNoResponse, Timing: tm(1, 1, 0, 0)}},
		},
		{
			// The server answers before the request body is done (an
			// early 413) and closes: the exchange keeps both halves.
			name: "early response",
			cfg:  known,
			steps: []step{
				c("POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123", 1),
				s("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 2),
				{side: Side1, end: true, ts: 3}, {side: Side0, end: true, ts: 3},
			},
			want: []brief{{Req: "POST /up", ReqBody: "0123", ReqSize: 4, Status: 413, Flags: session.FlagRequestGap, Timing: tm(1, 1, 2, 2)}},
		},
		{
			// A response arrives for a request never seen (sent before
			// the capture began): counted, not paired with the next.
			name: "orphan response",
			cfg:  known,
			steps: []step{
				s("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nold", 1),
				c("GET /new HTTP/1.1\r\n\r\n", 2), s("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew", 3),
			},
			want: []brief{{Req: "GET /new", Status: 200, RespBody: "new", RespSize: 3, Timing: tm(2, 2, 3, 3)}},
		},
		{
			// Bodies longer than the cap are truncated and flagged; the
			// size is the full size.
			name: "body cap",
			cfg:  Config{Client: Side0, MaxBody: 4},
			steps: []step{
				c("POST /big HTTP/1.1\r\nContent-Length: 8\r\n\r\n12345678", 1),
				s("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n0\r\n\r\n", 2),
			},
			want: []brief{{Req: "POST /big", ReqBody: "1234", ReqSize: 8, Status: 200, RespBody: "abcd", RespSize: 6,
				Flags: session.FlagRequestTruncated | session.FlagResponseTruncated, Timing: tm(1, 1, 2, 2)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.cfg, tt.steps)
			var got []brief
			for _, x := range r.exchanges {
				got = append(got, briefOf(x))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("exchanges:\n got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(r.unsupported, tt.unsupported) {
				t.Errorf("unsupported = %v, want %v", r.unsupported, tt.unsupported)
			}
		})
	}
}

// TestHeadersAsSent checks header order, case and repeats are kept, and a
// compressed body is stored as sent.
func TestHeadersAsSent(t *testing.T) {
	gz := "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
	r := run(t, Config{Client: Side0}, []step{
		c("GET /a?b=1 HTTP/1.1\r\nhost: x\r\nX-Multi: 1\r\nACCEPT-encoding: gzip\r\nX-Multi: 2\r\n\r\n", 1),
		s(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(gz), gz), 2),
	})
	if len(r.exchanges) != 1 {
		t.Fatalf("got %d exchanges", len(r.exchanges))
	}
	x := r.exchanges[0]
	want := session.Headers{{Name: "host", Value: "x"}, {Name: "X-Multi", Value: "1"}, {Name: "ACCEPT-encoding", Value: "gzip"}, {Name: "X-Multi", Value: "2"}}
	if !reflect.DeepEqual(x.Request.Header, want) {
		t.Errorf("header = %v, want %v", x.Request.Header, want)
	}
	if string(x.Response.Body) != gz {
		t.Errorf("body = %q, want the gzip bytes as sent", x.Response.Body)
	}
	if x.Request.Target != "/a?b=1" || x.Request.Proto != "HTTP/1.1" || x.Response.Reason != "OK" {
		t.Errorf("request line or status line misread: %+v %+v", x.Request, x.Response)
	}
	if x.Conn.Client.Port() != 40000 || x.Conn.Server.Port() != 8080 {
		t.Errorf("conn = %+v", x.Conn)
	}
}

// TestByteAtATime feeds a keep-alive conversation one byte at a time: the
// exchanges must be the same as when fed whole.
func TestByteAtATime(t *testing.T) {
	req := "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nGET /y HTTP/1.1\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyzHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n"
	var steps []step
	for i := range req {
		steps = append(steps, c(req[i:i+1], 1))
	}
	for i := range resp {
		steps = append(steps, s(resp[i:i+1], 2))
	}
	r := run(t, Config{Client: Side0}, steps)
	var got []string
	for _, x := range r.exchanges {
		got = append(got, fmt.Sprintf("%s %s %q %d %q %v", x.Request.Method, x.Request.Target, x.Request.Body, x.Response.Status, x.Response.Body, x.Flags))
	}
	want := []string{`POST /x "ab" 200 "xyz" 0`, `GET /y "" 200 "q" 0`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// tm builds the four timestamps of an exchange.
func tm(reqStart, reqEnd, respStart, respEnd int64) session.Timing {
	return session.Timing{RequestStart: reqStart, RequestEnd: reqEnd, ResponseStart: respStart, ResponseEnd: respEnd}
}

// TestBodyRoom checks bytes written into BodyRoom and fed from there are
// kept in place, byte-exact, for a counted body and a chunk, that the
// room ends where the body or chunk does and at the body cap, and that
// there is none between bodies.
func TestBodyRoom(t *testing.T) {
	r := &recorder{}
	cn := New(Config{MaxBody: 50}, r)
	if room := cn.BodyRoom(Side0); room != nil {
		t.Fatalf("room before any message: %d bytes", len(room))
	}
	cn.Feed(Side0, []byte("POST /a HTTP/1.1\r\nContent-Length: 30\r\n\r\nAAAAA"), 1)
	room := cn.BodyRoom(Side0)
	if len(room) != 25 {
		t.Fatalf("request room %d bytes, want the 25 still due", len(room))
	}
	copy(room, strings.Repeat("B", 20))
	cn.Feed(Side0, room[:20], 2)
	reqRoom := room
	cn.Feed(Side0, []byte("CCCCC"), 3)
	if room := cn.BodyRoom(Side0); room != nil {
		t.Fatalf("room after the request: %d bytes", len(room))
	}
	cn.Feed(Side1, []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n"), 4)
	room = cn.BodyRoom(Side1)
	if len(room) != 50 {
		t.Fatalf("response room %d bytes, want the body cap's 50 of the chunk's 64", len(room))
	}
	copy(room, strings.Repeat("D", 50))
	cn.Feed(Side1, room, 5)
	if room := cn.BodyRoom(Side1); room != nil {
		t.Fatalf("room past the body cap: %d bytes", len(room))
	}
	cn.Feed(Side1, []byte(strings.Repeat("E", 14)+"\r\n0\r\n\r\n"), 6)
	cn.Close()
	if len(r.exchanges) != 1 {
		t.Fatalf("%d exchanges", len(r.exchanges))
	}
	x := r.exchanges[0]
	if got, want := string(x.Request.Body), "AAAAA"+strings.Repeat("B", 20)+"CCCCC"; got != want {
		t.Errorf("request body %q, want %q", got, want)
	}
	if len(x.Request.Body) > 5 && &x.Request.Body[5] != &reqRoom[0] {
		t.Error("request body moved: the room was not its spare capacity")
	}
	if got, want := string(x.Response.Body), strings.Repeat("D", 50); got != want || x.Response.BodySize != 64 || x.Flags&session.FlagResponseTruncated == 0 {
		t.Errorf("response body %q (size %d, flags %v), want %q of 64, truncated", got, x.Response.BodySize, x.Flags, want)
	}
}
