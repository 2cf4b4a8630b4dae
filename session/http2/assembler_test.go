package http2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reprise-tool/reprise/session"
)

// chunk is bytes one direction sent at one time.
type chunk struct {
	dir  int
	data []byte
	ts   int64
}

// wire builds a connection's two byte streams frame by frame, with one
// HPACK encoder per direction as real peers keep.
type wire struct {
	chunks []chunk
	ts     int64
	buf    [2]bytes.Buffer
	fr     [2]*http2.Framer
	enc    [2]*hpack.Encoder
	hbuf   [2]bytes.Buffer
}

func newWire(preface bool) *wire {
	w := &wire{ts: 1_000_000_000}
	for i := range 2 {
		w.fr[i] = http2.NewFramer(&w.buf[i], nil)
		w.enc[i] = hpack.NewEncoder(&w.hbuf[i])
	}
	if preface {
		w.buf[0].WriteString(Preface)
	}
	w.fr[0].WriteSettings()
	w.flush(0)
	w.fr[1].WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	w.fr[1].WriteSettingsAck()
	w.flush(1)
	w.fr[0].WriteSettingsAck()
	w.flush(0)
	return w
}

// flush turns what direction i wrote since the last flush into a chunk,
// one millisecond after the previous one.
func (w *wire) flush(i int) {
	if w.buf[i].Len() == 0 {
		return
	}
	w.ts += 1_000_000
	w.chunks = append(w.chunks, chunk{dir: i, data: bytes.Clone(w.buf[i].Bytes()), ts: w.ts})
	w.buf[i].Reset()
}

// block encodes header fields on direction i.
func (w *wire) block(i int, kv ...string) []byte {
	w.hbuf[i].Reset()
	for k := 0; k < len(kv); k += 2 {
		w.enc[i].WriteField(hpack.HeaderField{Name: kv[k], Value: kv[k+1]})
	}
	return bytes.Clone(w.hbuf[i].Bytes())
}

func (w *wire) headers(i int, id uint32, end bool, kv ...string) {
	w.fr[i].WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: w.block(i, kv...), EndStream: end, EndHeaders: true})
	w.flush(i)
}

func (w *wire) data(i int, id uint32, end bool, p []byte) {
	w.fr[i].WriteData(id, end, p)
	w.flush(i)
}

// grpcMsg frames payload as one gRPC message.
func grpcMsg(payload string) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// recorder collects what an Assembler reports.
type recorder struct {
	started, dropped int
	exs              []*session.Exchange
	undecodable      []string
}

func (r *recorder) Started(x *session.Exchange)  { r.started++ }
func (r *recorder) Exchange(x *session.Exchange) { r.exs = append(r.exs, x) }
func (r *recorder) Dropped(x *session.Exchange)  { r.dropped++ }
func (r *recorder) Undecodable(reason string)    { r.undecodable = append(r.undecodable, reason) }

// run feeds the chunks from the from'th on, each cut into pieces of at
// most split bytes (0: whole), and closes.
func run(t *testing.T, w *wire, start bool, from, split int) (*recorder, *Assembler) {
	t.Helper()
	r := &recorder{}
	a := New(Config{Conn: session.Conn{ID: 1, Protocol: session.ProtoH2C}, MaxBody: 1 << 20, Start: start}, r)
	for _, c := range w.chunks[from:] {
		p := c.data
		for len(p) > 0 {
			n := len(p)
			if split > 0 {
				n = min(n, split)
			}
			a.Feed(c.dir, p[:n], c.ts)
			p = p[n:]
		}
	}
	a.Close()
	if r.started != len(r.exs)+r.dropped {
		t.Errorf("%d started, %d emitted, %d dropped", r.started, len(r.exs), r.dropped)
	}
	return r, a
}

func TestHTTP2Streams(t *testing.T) {
	w := newWire(true)
	// Stream 1: a GET answered with a 103, a body and trailers.
	w.headers(0, 1, true, ":method", "GET", ":scheme", "http", ":authority", "shop", ":path", "/items?page=2", "user-agent", "t")
	// Stream 3 opens before stream 1 is answered: concurrency 2.
	w.headers(0, 3, false, ":method", "POST", ":scheme", "http", ":authority", "shop", ":path", "/cart", "content-type", "text/plain")
	w.headers(1, 1, false, ":status", "103", "link", "</a.css>")
	w.headers(1, 1, false, ":status", "200", "content-type", "text/plain")
	w.data(0, 3, false, []byte("hel"))
	w.data(1, 1, false, []byte("items"))
	w.headers(1, 1, true, "x-checksum", "abc")
	w.data(0, 3, true, []byte("lo"))
	// Stream 3's response comes with padding.
	w.fr[1].WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: w.block(1, ":status", "201"), EndHeaders: true, PadLength: 7})
	w.fr[1].WriteDataPadded(3, true, []byte("made"), make([]byte, 20))
	w.flush(1)
	// Stream 5 is cancelled by the client; then the server says goodbye.
	w.headers(0, 5, true, ":method", "GET", ":scheme", "http", ":authority", "shop", ":path", "/slow")
	w.fr[0].WriteRSTStream(5, http2.ErrCodeCancel)
	w.flush(0)
	w.fr[1].WriteGoAway(5, http2.ErrCodeNo, nil)
	w.flush(1)

	for _, split := range []int{0, 1, 7} {
		t.Run(fmt.Sprintf("split%d", split), func(t *testing.T) {
			r, a := run(t, w, true, 0, split)
			if len(r.exs) != 3 || len(r.undecodable) != 0 {
				t.Fatalf("%d exchanges, undecodable %v", len(r.exs), r.undecodable)
			}
			byID := map[uint32]*session.Exchange{}
			for _, x := range r.exs {
				byID[x.Stream.ID] = x
			}
			x := byID[1]
			if x.Request.Method != "GET" || x.Request.Target != "/items?page=2" || x.Request.Header.Get(":authority") != "shop" || x.Request.Header[0].Name != ":method" {
				t.Errorf("stream 1 request %+v", x.Request)
			}
			if x.Response.Status != 200 || string(x.Response.Body) != "items" || x.Response.Trailer.Get("x-checksum") != "abc" {
				t.Errorf("stream 1 response %+v", x.Response)
			}
			if len(x.Stream.Interim) != 1 || x.Stream.Interim[0].Status != 103 || x.Stream.Interim[0].Header.Get("link") != "</a.css>" {
				t.Errorf("stream 1 interim %+v", x.Stream.Interim)
			}
			tm := x.Timing
			if !(tm.RequestStart > 0 && tm.RequestStart == tm.RequestEnd && tm.ResponseStart > tm.RequestEnd && tm.ResponseEnd > tm.ResponseStart) {
				t.Errorf("stream 1 timing %+v", tm)
			}
			if x := byID[3]; string(x.Request.Body) != "hello" || x.Response.Status != 201 || string(x.Response.Body) != "made" || x.Index != 1 {
				t.Errorf("stream 3 %+v", x)
			}
			x = byID[5]
			if x.Stream.Reset != (session.Abort{By: session.PartyClient, Code: uint32(http2.ErrCodeCancel)}) || x.Flags&session.FlagNoResponse == 0 {
				t.Errorf("stream 5 %+v %v", x.Stream, x.Flags)
			}
			if st := a.Stats(); st.Streams != 3 || st.MaxConcurrent != 2 || st.GoAways != 1 || st.Resets != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestGRPCMessages(t *testing.T) {
	w := newWire(true)
	req := func(id uint32, method string) {
		w.headers(0, id, false, ":method", "POST", ":scheme", "http", ":authority", "shop", ":path", method,
			"content-type", "application/grpc+proto", "te", "trailers")
	}
	// A bidi call: two client messages (the second split over frames),
	// three server messages in one frame, then the status in trailers.
	req(1, "/shop.Shop/Chat")
	w.data(0, 1, false, grpcMsg("hi"))
	m := grpcMsg("second")
	w.data(0, 1, false, m[:3])
	w.data(0, 1, true, m[3:])
	w.headers(1, 1, false, ":status", "200", "content-type", "application/grpc")
	w.data(1, 1, false, append(append(grpcMsg("a"), grpcMsg("bb")...), grpcMsg("")...))
	w.headers(1, 1, true, "grpc-status", "0")
	// A call the client cancels before any message: still gRPC.
	req(5, "/shop.Shop/Slow")
	w.fr[0].WriteRSTStream(5, http2.ErrCodeCancel)
	w.flush(0)
	// A unary call refused with a trailers-only response.
	req(3, "/shop.Shop/Login")
	w.data(0, 3, true, grpcMsg("creds"))
	w.headers(1, 3, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "16", "grpc-message", "bad%20creds")

	r, _ := run(t, w, true, 0, 0)
	if len(r.exs) != 3 {
		t.Fatalf("%d exchanges", len(r.exs))
	}
	if x := r.exs[1]; x.GRPCMethod() != "/shop.Shop/Slow" || x.Stream.GRPC.HasStatus || x.Stream.Reset.Code != uint32(http2.ErrCodeCancel) {
		t.Errorf("cancelled call %q %+v", x.GRPCMethod(), x.Stream)
	}
	r.exs = append(r.exs[:1], r.exs[2])
	x := r.exs[0]
	g := x.Stream.GRPC
	if x.GRPCMethod() != "/shop.Shop/Chat" || g == nil || !g.HasStatus || g.Status != 0 {
		t.Fatalf("chat %q %+v", x.GRPCMethod(), g)
	}
	var dirs, sizes []string
	for _, m := range g.Messages {
		dirs = append(dirs, fmt.Sprint(m.FromServer))
		sizes = append(sizes, fmt.Sprint(m.Size))
		if m.At <= 0 || m.At > x.Timing.ResponseEnd-x.Timing.RequestStart {
			t.Errorf("message at %d", m.At)
		}
	}
	if strings.Join(dirs, ",") != "false,false,true,true,true" || strings.Join(sizes, ",") != "2,6,1,2,0" {
		t.Errorf("messages %v %v", dirs, sizes)
	}
	if p, err := Payloads(x, false); err != nil || !reflect.DeepEqual(p, [][]byte{[]byte("hi"), []byte("second")}) {
		t.Errorf("payloads %q %v", p, err)
	}
	x = r.exs[1]
	if g := x.Stream.GRPC; g == nil || g.Status != 16 || g.StatusMessage != "bad%20creds" || len(g.Messages) != 1 {
		t.Errorf("login %+v", g)
	}
}

// TestHTTP2Continuation: a header block split over HEADERS and two
// CONTINUATION frames decodes as one.
func TestHTTP2Continuation(t *testing.T) {
	w := newWire(true)
	blk := w.block(0, ":method", "GET", ":scheme", "http", ":authority", "shop", ":path", "/c", "x-long", strings.Repeat("v", 100))
	w.fr[0].WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:10], EndStream: true})
	w.fr[0].WriteContinuation(1, false, blk[10:50])
	w.fr[0].WriteContinuation(1, true, blk[50:])
	w.flush(0)
	w.headers(1, 1, true, ":status", "204")
	r, _ := run(t, w, true, 0, 3)
	if len(r.exs) != 1 || len(r.exs[0].Request.Header.Get("x-long")) != 100 || r.exs[0].Response.Status != 204 {
		t.Fatalf("%+v", r.exs)
	}
}

// TestHTTP2PushCounted: a PUSH_PROMISE is counted on its stream and the
// pushed stream is not recorded.
func TestHTTP2PushCounted(t *testing.T) {
	w := newWire(true)
	w.headers(0, 1, true, ":method", "GET", ":scheme", "http", ":authority", "shop", ":path", "/")
	w.fr[1].WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: w.block(1, ":method", "GET", ":path", "/style.css", ":scheme", "http", ":authority", "shop"), EndHeaders: true})
	w.flush(1)
	w.headers(1, 1, true, ":status", "200")
	w.headers(1, 2, false, ":status", "200")
	w.data(1, 2, true, []byte("css"))
	r, a := run(t, w, true, 0, 0)
	if len(r.exs) != 1 || r.exs[0].Stream.Pushes != 1 || a.Stats().Pushes != 1 {
		t.Fatalf("%d exchanges, stats %+v", len(r.exs), a.Stats())
	}
}

// TestHTTP2MidConnection cuts a connection's first chunks after its HPACK
// tables were used, at every possible point: every stream emitted must be
// exactly the one sent (never a guessed header), and every other stream
// that had frames after the cut is counted as undecodable.
func TestHTTP2MidConnection(t *testing.T) {
	w := newWire(true)
	type sent struct{ path, token, status string }
	truth := map[string]sent{}
	for k := range 12 {
		id := uint32(2*k + 1)
		path := fmt.Sprintf("/orders/%d", k)
		// The token repeats (indexed after its first use) and changes
		// every four streams; the paths are new each time.
		tok := fmt.Sprintf("Bearer t%d", k/4)
		w.headers(0, id, true, ":method", "GET", ":scheme", "http", ":authority", "shop", ":path", path, "authorization", tok)
		status := []string{"200", "404"}[k%2]
		w.headers(1, id, false, ":status", status, "x-server", "s1")
		w.data(1, id, true, []byte(path))
		truth[path] = sent{path, tok, status}
	}
	full, _ := run(t, w, true, 0, 0)
	if len(full.exs) != 12 || len(full.undecodable) != 0 {
		t.Fatalf("whole connection: %d exchanges, %v", len(full.exs), full.undecodable)
	}
	var recovered, counted int
	for cut := 1; cut < len(w.chunks); cut++ {
		r, _ := run(t, w, false, cut, 0)
		for _, x := range r.exs {
			s, ok := truth[x.Request.Target]
			if !ok || x.Request.Header.Get("authorization") != s.token || fmt.Sprint(x.Response.Status) != s.status ||
				x.Response.Header.Get("x-server") != "s1" || string(x.Response.Body) != s.path {
				t.Fatalf("cut %d: wrong exchange %q %v %d", cut, x.Request.Target, x.Request.Header, x.Response.Status)
			}
		}
		recovered += len(r.exs)
		counted += len(r.undecodable)
		for _, why := range r.undecodable {
			if why != ReasonTableBeforeCapture && why != ReasonOpenedBeforeCapture {
				t.Errorf("cut %d: undecodable because %s", cut, why)
			}
		}
		// Streams with frames after the cut: recovered or counted.
		ids := map[uint32]bool{}
		for _, c := range w.chunks[cut:] {
			if id := binary.BigEndian.Uint32(c.data[5:9]); id != 0 && len(c.data) >= 9 && c.data[3] <= 1 {
				ids[id] = true
			}
		}
		if len(r.exs)+len(r.undecodable) != len(ids) {
			t.Errorf("cut %d: %d recovered + %d undecodable, %d streams had frames", cut, len(r.exs), len(r.undecodable), len(ids))
		}
	}
	if recovered == 0 || counted == 0 {
		t.Errorf("recovered %d, counted %d: the test shows nothing", recovered, counted)
	}
	t.Logf("over all cuts: %d streams recovered, %d counted undecodable", recovered, counted)
}

// TestHTTP2OpenStreamsBounded: streams that never end are given up, oldest
// first, once maxOpenStreams are open, so memory stays bounded.
func TestHTTP2OpenStreamsBounded(t *testing.T) {
	w := newWire(true)
	for k := range maxOpenStreams + 10 {
		w.fr[0].WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*k + 1), BlockFragment: w.block(0, ":method", "GET", ":path", "/", ":scheme", "http", ":authority", "x"), EndHeaders: true, EndStream: true})
	}
	w.flush(0)
	r := &recorder{}
	a := New(Config{Conn: session.Conn{Protocol: session.ProtoH2C}, Start: true}, r)
	for _, c := range w.chunks {
		a.Feed(c.dir, c.data, c.ts)
	}
	if len(r.exs) != 10 || r.exs[0].Stream.ID != 1 || r.exs[9].Stream.ID != 19 || r.exs[0].Flags&session.FlagNoResponse == 0 {
		t.Fatalf("%d given up before the close, first %+v", len(r.exs), r.exs[0].Stream)
	}
	a.Close()
	if len(r.exs) != maxOpenStreams+10 {
		t.Errorf("%d streams after the close", len(r.exs))
	}
}

// TestHTTP2GapInData: bytes lost inside a DATA frame's payload flag that
// stream only; the next stream, whose headers use the HPACK table, still
// decodes. Bytes lost across a frame header cost the table.
func TestHTTP2GapInData(t *testing.T) {
	w := newWire(true)
	w.headers(0, 1, true, ":method", "GET", ":scheme", "http", ":authority", "shop", ":path", "/big", "x-trace", "abc")
	w.headers(1, 1, false, ":status", "200", "x-server", "s1")
	w.data(1, 1, true, bytes.Repeat([]byte("z"), 3000))
	big := len(w.chunks) - 1
	w.headers(0, 3, true, ":method", "GET", ":scheme", "http", ":authority", "shop", ":path", "/next", "x-trace", "abc")
	w.headers(1, 3, true, ":status", "200", "x-server", "s1")
	for _, tc := range []struct {
		name      string
		off, n    int // bytes of the big DATA frame chunk lost
		recovered int
	}{
		{"inside the payload", 1000, 500, 2},   // framing and tables go on
		{"across the frame header", 0, 500, 1}, // stream 3's response uses the lost table: counted
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.feedLosing(big, tc.off, tc.n)
			ok := 0
			for _, x := range r.exs {
				if x.Response.Header.Get("x-server") == "s1" && x.Flags&session.FlagNoResponse == 0 {
					ok++
				}
				if x.Request.Target == "/big" && (x.Flags&session.FlagResponseGap == 0 || (tc.recovered == 2) != (x.Response.BodySize == 3000)) {
					t.Errorf("stream 1: flags %v, body size %d", x.Flags, x.Response.BodySize)
				}
			}
			if ok != tc.recovered {
				t.Errorf("%d streams recovered whole, want %d (undecodable %v)", ok, tc.recovered, r.undecodable)
			}
		})
	}
}

// TestGRPCGapInData: a loss inside one message's payload keeps the
// message count; a loss over a message prefix stops splitting rather
// than invent messages from the zeros.
func TestGRPCGapInData(t *testing.T) {
	w := newWire(true)
	w.headers(0, 1, true, ":method", "POST", ":scheme", "http", ":authority", "shop", ":path", "/s.S/List", "content-type", "application/grpc")
	w.headers(1, 1, false, ":status", "200", "content-type", "application/grpc")
	body := append(append(grpcMsg(strings.Repeat("a", 1000)), grpcMsg(strings.Repeat("b", 1000))...), grpcMsg("c")...)
	w.data(1, 1, false, body)
	big := len(w.chunks) - 1
	w.headers(1, 1, true, "grpc-status", "0")
	for _, tc := range []struct {
		name     string
		off, n   int
		messages int // server messages recorded
	}{
		{"inside a payload", 9 + 100, 500, 3},
		{"over a prefix", 9 + 900, 300, 0}, // the second prefix is at 9+1005
	} {
		r := w.feedLosing(big, tc.off, tc.n)
		if len(r.exs) != 1 {
			t.Fatalf("%s: %d exchanges", tc.name, len(r.exs))
		}
		got := 0
		for _, m := range r.exs[0].Stream.GRPC.Messages {
			if m.FromServer {
				got++
			}
		}
		if got != tc.messages || !r.exs[0].Stream.GRPC.HasStatus {
			t.Errorf("%s: %d server messages, want %d; %v", tc.name, got, tc.messages, r.exs[0].Warnings)
		}
	}
}

// feedLosing feeds the wire's chunks to a new h2c assembler, losing n
// bytes at off in chunk big (a Gap in their place), and returns what it
// recorded.
func (w *wire) feedLosing(big, off, n int) *recorder {
	r := &recorder{}
	a := New(Config{Conn: session.Conn{Protocol: session.ProtoH2C}, MaxBody: 1 << 20, Start: true}, r)
	for k, c := range w.chunks {
		if k != big {
			a.Feed(c.dir, c.data, c.ts)
			continue
		}
		a.Feed(c.dir, c.data[:off], c.ts)
		a.Gap(c.dir, n, c.ts)
		a.Feed(c.dir, c.data[off+n:], c.ts)
	}
	a.Close()
	return r
}
