// Package httpstream parses the two byte streams of one TCP connection as
// HTTP/1.0 and HTTP/1.1 and pairs each request with its response.
//
// It knows nothing of packets: a Conn is fed chunks of reassembled bytes with
// their capture timestamps, gaps (bytes known to be lost) and ends, so it can
// be tested and fuzzed on its own. The packet pipeline in package capture
// feeds it from gopacket's TCP reassembly.
//
// What it handles: keep-alive and pipelining (responses are matched to
// requests in order), Content-Length, chunked transfer coding (the body is
// stored de-chunked, trailers kept), bodies delimited by the close of the
// connection, interim 1xx responses (skipped, so 100-continue works), HEAD and
// 204/304 responses without bodies. Bodies are stored as sent: a gzip body
// stays gzip. Header fields keep their order and the case they were sent in.
// The framing rules (where a message ends, repeated or conflicting
// Content-Length, Transfer-Encoding over Content-Length, obsolete line
// folding, bare LF line ends) are session/http1's, shared with the
// recording proxy and the replay client; what they tolerated is warned
// about on the exchange.
//
// HTTP/2 is handed to session/http2's assembler, which turns each stream
// into an exchange: a connection that starts with the client preface, an
// HTTP/1.1 request upgraded to h2c by a 101 (it becomes stream 1), or, on a
// connection joined mid-way, one whose first bytes are HTTP/2 frames. Its
// exchanges are emitted as their streams end, so in Index order only
// where streams did not overlap; streams it cannot decode are reported to
// Events.Unsupported with KindUndecodableStream.
//
// What it refuses, counted and never written as garbage: TLS, WebSocket
// and other upgrades, CONNECT tunnels. After a gap the parser resynchronises on the next request
// or status line, so a lost segment marks exchanges incomplete but never
// stalls the connection.
package httpstream

import (
	"net/netip"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
	"github.com/reprise-tool/reprise/session/http2"
)

// Side names one end of a connection: 0 for the sender of the first packet
// seen, 1 for the other. Unknown says the role is not known yet.
type Side int8

// Side values.
const (
	Unknown Side = -1
	Side0   Side = 0
	Side1   Side = 1
)

// The unsupported kinds reported to Events.Unsupported and counted in
// session.Counters.Unsupported.
const (
	KindTLS       = "tls"
	KindHTTP2     = "http2"
	KindWebSocket = "websocket"
	KindUpgrade   = "upgrade" // any other protocol switched to with 101
	KindConnect   = "connect" // a CONNECT tunnel
	KindOther     = "other"   // a connection seen from its start that never spoke HTTP/1
)

// Defaults for Config fields left zero.
const (
	DefaultMaxHead    = 64 << 10
	DefaultMaxPending = 256
	maxLine           = 4 << 10
)

// Config describes one connection to parse.
type Config struct {
	// ID is copied into every exchange's Conn.ID.
	ID uint64
	// Addr holds the address of side 0 and side 1.
	Addr [2]netip.AddrPort
	// Client is the side known to be the client (from the SYN), or Unknown:
	// then the side that sends a request line is the client.
	Client Side
	// StartSeen says the connection was seen from its first byte, so a
	// connection that never shows HTTP/1 is counted as KindOther.
	StartSeen bool
	// MaxBody caps the bytes of each body kept; longer bodies are truncated
	// and flagged. Zero keeps no body bytes.
	MaxBody int64
	// MaxHead bounds a message head (request or status line and header
	// fields); zero means DefaultMaxHead. A longer head is treated as junk.
	MaxHead int
	// MaxPending bounds requests waiting for their responses on one
	// connection; zero means DefaultMaxPending. Beyond it the oldest is given
	// up (FlagNoResponse) and its response, if it ever comes, is skipped.
	MaxPending int
	// TLS says the bytes fed were decrypted from TLS: HTTP/2 found on the
	// connection was negotiated by ALPN and is recorded as h2, not h2c.
	TLS bool
}

// Events receives what a Conn finds. Calls are made synchronously from
// Feed, Gap, End and Close.
type Events interface {
	// RequestStarted is called when a request line has been parsed; the
	// exchange is later passed to exactly one of Exchange or Dropped.
	RequestStarted(x *session.Exchange)
	// Exchange is called with each finished exchange, in Index order per
	// connection. The Events implementation owns x from then on.
	Exchange(x *session.Exchange)
	// Dropped is called for a started exchange that will not be emitted
	// because the connection switched to a protocol Reprise cannot record.
	Dropped(x *session.Exchange)
	// Unsupported is called at most once per connection with the kind of
	// traffic that made the parser stop, and on an HTTP/2 connection once
	// per stream that could not be decoded (KindUndecodableStream).
	Unsupported(kind string)
	// Orphan is called for a response that matched no request (its request
	// was sent before the capture began, or lost).
	Orphan()
}

// state is what a direction expects next.
type state uint8

const (
	stResync    state = iota // looking for a message start (also: role unknown)
	stHead                   // reading a request or status line and header fields
	stBody                   // reading remain body bytes
	stChunkLine              // reading a chunk-size line
	stChunkData              // reading remain bytes of chunk data
	stChunkEnd               // reading the CRLF after chunk data
	stTrailer                // reading trailer fields after the last chunk
	stCloseBody              // reading a body delimited by the close of the connection
	stDone                   // the direction ended or the connection is skipped
)

// txn is one exchange under construction.
type txn struct {
	x                 *session.Exchange
	reqDone, respDone bool
	respStarted       bool
	head              bool   // HEAD request: the response has no body
	connect           bool   // CONNECT request
	upgrade           string // lower-cased Upgrade field of the request
}

// dir is the parse state of one direction. Before the roles are known,
// dirs are indexed by side; after, index 0 is the request direction.
type dir struct {
	st        state
	buf       []byte // bytes of an incomplete head or line, or scanned while resyncing
	bufTs     int64  // timestamp of the first byte in buf
	lineStart bool   // while resyncing: buf[0] is at the start of a line
	cand      int    // while resyncing: offset in buf where a chunk began, or -1
	resynced  bool   // the direction lost sync since its last message
	t         *txn   // the message being read; nil while discarding
	remain    int64
	first     bool // a byte was seen
	ended     bool
	lastTs    int64
}

// Conn parses one TCP connection. It is not safe for concurrent use.
// Data passed to Feed is copied where kept, so the caller may reuse it.
type Conn struct {
	cfg      Config
	ev       Events
	client   Side
	info     session.Conn
	d        [2]dir
	queue    []*txn // exchanges not yet emitted, in order
	respNext int    // index in queue of the next request awaiting a response
	skipResp int    // responses to skip: their requests were given up or lost
	index    int
	emitted  int    // exchanges handed to Events.Exchange
	kind     string // unsupported kind once detected
	closed   bool
	started  bool // a request was parsed
	sawBytes bool
	framing  http1.Framing    // of the head being handled, reused
	h2       *http2.Assembler // set once the connection speaks HTTP/2
}

// New returns a parser for one connection reporting to ev.
func New(cfg Config, ev Events) *Conn {
	if cfg.MaxHead <= 0 {
		cfg.MaxHead = DefaultMaxHead
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxBody < 0 {
		cfg.MaxBody = 0
	}
	c := &Conn{cfg: cfg, ev: ev, client: Unknown}
	c.d[0].lineStart, c.d[1].lineStart = true, true
	c.d[0].cand, c.d[1].cand = -1, -1
	if cfg.Client == Side0 || cfg.Client == Side1 {
		c.setClient(cfg.Client)
	}
	return c
}

// Conn returns the connection identity stamped on exchanges; Client and
// Server are zero until the roles are known.
func (c *Conn) Conn() session.Conn { return c.info }

// Client returns the client's side, or Unknown while the roles are not
// known.
func (c *Conn) Client() Side { return c.client }

// Exchanges counts the exchanges emitted so far.
func (c *Conn) Exchanges() int { return c.emitted }

// Unsupported returns the kind of traffic that made the parser stop, or "".
func (c *Conn) Unsupported() string { return c.kind }

// Closed reports whether Close was called or the connection is skipped.
func (c *Conn) Closed() bool { return c.closed }

func (c *Conn) setClient(s Side) {
	c.client = s
	c.info = session.Conn{ID: c.cfg.ID, Client: c.cfg.Addr[s], Server: c.cfg.Addr[1-s]}
	if !c.cfg.StartSeen {
		// Mid-stream: each direction looks for its first message start.
		return
	}
	for i := range c.d {
		if c.d[i].st == stResync && !c.d[i].resynced && len(c.d[i].buf) == 0 {
			c.d[i].st = stHead
		}
	}
}

// index of the direction data from side s travels in.
func (c *Conn) dirOf(s Side) int {
	if c.client == Unknown {
		return int(s)
	}
	if s == c.client {
		return 0
	}
	return 1
}

// Feed passes bytes sent by side s, captured at ts (Unix nanoseconds).
func (c *Conn) Feed(s Side, data []byte, ts int64) {
	if c.closed || len(data) == 0 || (s != Side0 && s != Side1) {
		return
	}
	c.sawBytes = true
	if c.h2 != nil {
		c.h2.Feed(c.h2dir(s), data, ts)
		return
	}
	i := c.dirOf(s)
	h := &c.d[i]
	if h.st == stDone {
		return
	}
	h.lastTs = ts
	if !h.first {
		h.first = true
		if isTLS(data) {
			c.unsupported(KindTLS)
			return
		}
		if c.h2Start(s, data) {
			c.h2.Feed(c.h2dir(s), data, ts)
			return
		}
	}
	c.feed(i, data, ts)
}

// feed runs direction i's state machine over data.
func (c *Conn) feed(i int, data []byte, ts int64) {
	h := &c.d[i]
	for len(data) > 0 && !c.closed {
		if c.h2 != nil {
			// The connection switched to HTTP/2 inside this chunk.
			c.h2.Feed(i, data, ts)
			return
		}
		var n int
		switch h.st {
		case stResync:
			c.resync(i, data, ts)
			return
		case stHead:
			n = c.readHead(i, data, ts)
		case stBody:
			n = int(min(h.remain, int64(len(data))))
			c.body(i, data[:n])
			h.remain -= int64(n)
			if h.remain == 0 {
				c.endMessage(i, ts)
			}
		case stChunkLine, stChunkEnd, stTrailer:
			n = c.readChunkLine(i, data, ts)
		case stChunkData:
			n = int(min(h.remain, int64(len(data))))
			c.body(i, data[:n])
			h.remain -= int64(n)
			if h.remain == 0 {
				h.st = stChunkEnd
			}
		case stCloseBody:
			n = len(data)
			c.body(i, data)
		case stDone:
			return
		}
		data = data[n:]
	}
}

// Gap says n bytes sent by side s were lost (n < 0: an unknown number).
func (c *Conn) Gap(s Side, n int, ts int64) {
	if c.closed || (s != Side0 && s != Side1) {
		return
	}
	if c.h2 != nil {
		c.h2.Gap(c.h2dir(s), n, ts)
		return
	}
	i := c.dirOf(s)
	h := &c.d[i]
	if h.st == stDone {
		return
	}
	if c.client == Unknown {
		h.buf, h.lineStart, h.cand = h.buf[:0], false, -1
		return
	}
	switch h.st {
	case stBody, stChunkData:
		if n >= 0 && int64(n) <= h.remain {
			c.gapBody(i, int64(n))
			h.remain -= int64(n)
			if h.remain == 0 {
				if h.st == stBody {
					c.endMessage(i, ts)
				} else {
					h.st = stChunkEnd
				}
			}
			return
		}
	case stCloseBody:
		if n >= 0 {
			c.gapBody(i, int64(n))
			return
		}
	case stHead:
		if len(h.buf) == 0 && h.t == nil {
			// Lost between messages: whole messages may be gone. A request
			// lost this way still gets a response, which would then be
			// paired with the wrong request; the resync heuristic on the
			// response side limits the damage.
			h.st, h.lineStart, h.resynced, h.cand = stResync, true, true, -1
			if i == 1 {
				c.markRespGap()
			}
			return
		}
	case stResync:
		h.buf, h.lineStart, h.cand = h.buf[:0], false, -1
		return
	}
	c.lostSync(i, "bytes lost in reassembly")
}

// End says side s will send no more bytes: clean is true for a FIN or RST,
// false when the capture ended or the connection timed out.
func (c *Conn) End(s Side, ts int64, clean bool) {
	if c.closed || (s != Side0 && s != Side1) {
		return
	}
	i := c.dirOf(s)
	if c.h2 != nil {
		c.d[i].ended = true
	} else {
		c.endDir(i, clean)
	}
	if c.d[0].ended && c.d[1].ended {
		c.Close()
	}
}

func (c *Conn) endDir(i int, clean bool) {
	h := &c.d[i]
	if h.ended {
		return
	}
	h.ended = true
	switch {
	case h.st == stCloseBody && h.t != nil:
		if !clean {
			c.flag(h.t, i, "capture ended before the response did")
		}
		c.endMessage(i, h.lastTs)
	case h.t != nil && h.st != stHead && h.st != stResync && h.st != stDone:
		c.flag(h.t, i, "connection closed inside a message")
		c.endMessage(i, h.lastTs)
	case i == 1 && c.client != Unknown && h.st == stHead && len(h.buf) > 0:
		// A response head cut off by the close: its request has no response.
		c.markRespGap()
	}
	h.st = stDone
	h.buf = nil
}

// Close ends the connection: requests still waiting get FlagNoResponse,
// messages in progress are flagged, and every exchange is emitted. It is
// safe to call more than once.
func (c *Conn) Close() {
	if c.closed {
		return
	}
	if c.h2 != nil {
		c.closed = true
		c.h2.Close()
		return
	}
	for i := range c.d {
		c.endDir(i, false)
	}
	c.closed = true
	for _, t := range c.queue {
		if !t.reqDone {
			t.x.Flags |= session.FlagRequestGap
			warn(t.x, "connection ended before the request did")
			t.reqDone = true
		}
		if !t.respDone {
			if t.respStarted {
				t.x.Flags |= session.FlagResponseGap
			} else {
				t.x.Flags |= session.FlagNoResponse
			}
			t.respDone = true
		}
	}
	c.emitReady()
	if c.kind == "" && !c.started && c.sawBytes && c.cfg.StartSeen {
		c.kind = KindOther
		c.ev.Unsupported(KindOther)
	}
}

// unsupported stops parsing: the connection carries traffic Reprise cannot
// record. Exchanges already finished were emitted; the rest are dropped.
func (c *Conn) unsupported(kind string) {
	if c.kind != "" {
		return
	}
	c.kind = kind
	c.ev.Unsupported(kind)
	c.emitReady()
	for _, t := range c.queue {
		c.ev.Dropped(t.x)
	}
	c.queue = nil
	c.respNext = 0
	for i := range c.d {
		c.d[i].st, c.d[i].buf, c.d[i].t = stDone, nil, nil
		c.d[i].ended = true
	}
	c.closed = true
}

// emitReady emits finished exchanges from the front of the queue.
func (c *Conn) emitReady() {
	n := 0
	for n < len(c.queue) && c.queue[n].reqDone && c.queue[n].respDone {
		c.emitted++
		c.ev.Exchange(c.queue[n].x)
		c.queue[n] = nil
		n++
	}
	if n > 0 {
		c.queue = c.queue[n:]
		c.respNext = max(0, c.respNext-n)
		if len(c.queue) == 0 {
			c.queue = c.queue[:0:0]
		}
	}
}

// markRespGap gives up the next request awaiting a response: its response
// was lost. Its response, if part of it turns up, is skipped.
func (c *Conn) markRespGap() {
	if c.respNext < len(c.queue) {
		t := c.queue[c.respNext]
		c.respNext++
		t.x.Flags |= session.FlagResponseGap | session.FlagNoResponse
		warn(t.x, "response lost in reassembly")
		t.respDone = true
		c.emitReady()
	}
}

// lostSync ends the message in progress on direction i as damaged and
// starts looking for the next message start.
func (c *Conn) lostSync(i int, why string) {
	h := &c.d[i]
	switch {
	case h.t != nil:
		c.flag(h.t, i, why)
		c.endMessage(i, h.lastTs)
	case i == 0 && h.st == stHead && len(h.buf) > 0:
		// A request head was damaged: the server will still answer it.
		c.skipResp++
	case i == 1 && h.st == stHead && len(h.buf) > 0:
		c.markRespGap()
	}
	h.st, h.buf, h.lineStart, h.resynced, h.remain, h.cand = stResync, h.buf[:0], false, true, 0, -1
}

// flag marks the message of direction i in t as damaged.
func (c *Conn) flag(t *txn, i int, why string) {
	if i == 0 {
		t.x.Flags |= session.FlagRequestGap
	} else {
		t.x.Flags |= session.FlagResponseGap
	}
	warn(t.x, why)
}

func warn(x *session.Exchange, w string) { x.Warn(w) }

// endMessage finishes the message of direction i at ts.
func (c *Conn) endMessage(i int, ts int64) {
	h := &c.d[i]
	t := h.t
	h.t, h.st, h.remain, h.buf = nil, stHead, 0, h.buf[:0]
	if t == nil {
		return
	}
	if i == 0 {
		t.x.Timing.RequestEnd = ts
		t.reqDone = true
	} else {
		t.x.Timing.ResponseEnd = ts
		t.respDone = true
	}
	c.emitReady()
}

// body appends body bytes of direction i's message, up to the cap.
func (c *Conn) body(i int, p []byte) {
	t := c.d[i].t
	if t == nil || len(p) == 0 {
		return
	}
	b, size, flag := c.bodyOf(i, t)
	*size += int64(len(p))
	if room := c.cfg.MaxBody - int64(len(*b)); room > 0 {
		n := min(room, int64(len(p)))
		if inPlace(*b, p) {
			// Written into BodyRoom's room by the caller.
			*b = (*b)[:len(*b)+int(n)]
		} else {
			c.reserve(b, n)
			*b = append(*b, p[:n]...)
		}
	}
	if *size > c.cfg.MaxBody {
		t.x.Flags |= flag
	}
}

// BodyRoom returns where the next bytes of side s may be written so that
// Feed finds them already in place and keeps them without a copy: the
// spare capacity of the body s is in the middle of, as long as the bytes
// that body still expects (a Content-Length body or a chunk), within the
// body cap. It returns nil between bodies. Bytes written there stay the
// caller's until passed to Feed, which must be the next call on c.
func (c *Conn) BodyRoom(s Side) []byte {
	if c.closed || c.h2 != nil || (s != Side0 && s != Side1) {
		return nil
	}
	i := c.dirOf(s)
	h := &c.d[i]
	if (h.st != stBody && h.st != stChunkData) || h.t == nil {
		return nil
	}
	b, _, _ := c.bodyOf(i, h.t)
	n := min(h.remain, c.cfg.MaxBody-int64(len(*b)), int64(cap(*b)-len(*b)))
	if n <= 0 {
		return nil
	}
	return (*b)[len(*b) : len(*b)+int(n)]
}

// inPlace reports whether p starts where b ends, inside b's capacity:
// bytes a caller wrote into BodyRoom.
func inPlace(b, p []byte) bool {
	return len(p) > 0 && cap(b) > len(b) && &b[:len(b)+1][len(b)] == &p[0]
}

// reserve makes room in *b for n more body bytes (fewer when the cap is
// nearer). A body whose length was not known up front (chunked, or read to
// the close) grows by at least doubling, never past the cap: append's own
// growth for large slices is a quarter at a time, which copies a
// 1 MiB body about twenty times on its way up.
func (c *Conn) reserve(b *[]byte, n int64) {
	room := c.cfg.MaxBody - int64(len(*b))
	n = min(n, room)
	if n <= int64(cap(*b)-len(*b)) {
		return
	}
	// make, not slices.Grow: the runtime skips clearing memory fresh from
	// the OS, and every byte of the new room is written by the body next.
	nb := make([]byte, 0, int64(len(*b))+max(n, min(int64(cap(*b)), room)))
	*b = append(nb, *b...)
}

// gapBody accounts n lost body bytes: they are counted in BodySize and
// stored as zeros, so offsets after the gap stay right.
func (c *Conn) gapBody(i int, n int64) {
	t := c.d[i].t
	if t == nil {
		return
	}
	c.flag(t, i, "body bytes lost in reassembly")
	b, size, flag := c.bodyOf(i, t)
	*size += n
	if room := c.cfg.MaxBody - int64(len(*b)); room > 0 {
		k := min(room, n)
		*b = append(*b, make([]byte, k)...)
	}
	if *size > c.cfg.MaxBody {
		t.x.Flags |= flag
	}
}

func (c *Conn) bodyOf(i int, t *txn) (*[]byte, *int64, session.Flags) {
	if i == 0 {
		return &t.x.Request.Body, &t.x.Request.BodySize, session.FlagRequestTruncated
	}
	return &t.x.Response.Body, &t.x.Response.BodySize, session.FlagResponseTruncated
}
