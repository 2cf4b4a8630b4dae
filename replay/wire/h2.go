package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reprise-tool/reprise/session"
)

// HTTP/2 error kinds, beside the transport's (see Kind).
const (
	KindStreamReset = "stream-reset" // the server reset the stream (RST_STREAM)
	KindGoAway      = "goaway"       // the server went away before the stream was done, and it could not be retried
	KindProtocol    = "h2-protocol"  // the server broke HTTP/2 framing or sent no HTTP/2 (no ALPN h2)
)

// The windows a connection advertises: large, so that the server never
// waits for the replay to read (the recorded client's own windows are not
// recorded).
const (
	h2Window       = 1 << 30
	h2WindowUpdate = h2Window / 2
)

// StreamError is a stream the server reset.
type StreamError struct {
	ID   uint32
	Code http2.ErrCode
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("http2: server reset stream %d: %v", e.ID, e.Code)
}

// Kind returns KindStreamReset.
func (e *StreamError) Kind() string { return KindStreamReset }

// GoAwayError is a stream the server's GOAWAY left unprocessed (its id is
// above the last one the server will process) or cut short.
type GoAwayError struct {
	LastStreamID uint32
	Code         http2.ErrCode
	// Unprocessed says the server never acted on the stream: sending it
	// again on a new connection is safe.
	Unprocessed bool
}

func (e *GoAwayError) Error() string {
	return fmt.Sprintf("http2: server sent GOAWAY (last stream %d, %v)", e.LastStreamID, e.Code)
}

// Kind returns KindGoAway.
func (e *GoAwayError) Kind() string { return KindGoAway }

// ProtocolError is an HTTP/2 connection the server broke.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "http2: " + e.Reason }

// Kind returns KindProtocol.
func (e *ProtocolError) Kind() string { return KindProtocol }

// GRPCError is a gRPC response whose grpc-status is not OK: the exchange
// went through, and its status is an error kind of its own,
// "grpc-status-N" (N the code).
type GRPCError struct {
	Code    int
	Message string
}

func (e *GRPCError) Error() string {
	return fmt.Sprintf("grpc-status %d: %s", e.Code, e.Message)
}

// Kind returns "grpc-status-N".
func (e *GRPCError) Kind() string { return fmt.Sprintf("grpc-status-%d", e.Code) }

// H2Client opens HTTP/2 connections to one address: h2c with prior
// knowledge when Config.TLS is nil, h2 by ALPN otherwise (the TLS config
// must offer "h2"; see H2TLSConfig). Each connection carries many
// streams at once; an H2Line keeps one for a recorded connection.
type H2Client struct {
	cfg    Config
	dialer *net.Dialer

	mu     sync.Mutex
	open   map[*H2Conn]struct{}
	closed bool
	shared *H2Line // the streams of a pooled replay (see Do)

	stats connStats
	waits h2Counter // streams that waited for the server's concurrency limit
}

// NewH2 returns an HTTP/2 client for cfg, with a TLS session cache as
// New has.
func NewH2(cfg Config) *H2Client {
	cfg.TLS = withSessionCache(cfg.TLS)
	return &H2Client{cfg: cfg, dialer: &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second},
		open: make(map[*H2Conn]struct{})}
}

// H2TLSConfig returns a copy of c that offers HTTP/2 by ALPN ("h2" first,
// then what c offered); nil stays nil.
func H2TLSConfig(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	protos := []string{"h2"}
	for _, p := range c.NextProtos {
		if p != "h2" {
			protos = append(protos, p)
		}
	}
	c.NextProtos = protos
	return c
}

// H2Stats are what an H2Client's connections did.
type H2Stats struct {
	ConnStats
	// ConcurrencyWaits counts the streams that waited for a slot under
	// the server's SETTINGS_MAX_CONCURRENT_STREAMS.
	ConcurrencyWaits uint64
}

// Stats returns what the client's connections did so far.
func (w *H2Client) Stats() H2Stats {
	return H2Stats{ConnStats: w.stats.snapshot(), ConcurrencyWaits: w.waits.load()}
}

// h2Counter is a counter under a mutex, for counts taken rarely.
type h2Counter struct {
	mu sync.Mutex
	n  uint64
}

func (c *h2Counter) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *h2Counter) load() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// CloseAll closes every connection; later streams fail with ErrClosed.
func (w *H2Client) CloseAll() {
	w.mu.Lock()
	w.closed = true
	conns := make([]*H2Conn, 0, len(w.open))
	for c := range w.open {
		conns = append(conns, c)
	}
	w.mu.Unlock()
	for _, c := range conns {
		c.close(ErrClosed, false)
	}
}

// H2Conn is one HTTP/2 connection: a reader goroutine takes the server's
// frames and hands each stream its own; streams write under wmu.
type H2Conn struct {
	w  *H2Client
	nc net.Conn

	wmu       sync.Mutex // guards wbuf, flushing, fr's writing side, enc, nextID, wdeadline
	wcond     *sync.Cond // on wmu: broadcast when the flusher takes wbuf
	wdeadline time.Time
	wbuf      []byte // frames written and not yet taken for the socket
	flushing  bool   // a writer is moving wbuf to the socket (see unlockW)
	sbuf      []byte // the bytes the flusher is writing; only it touches them
	fr        *http2.Framer
	hq        []h2Job       // streams waiting for their HEADERS, in id order (see queueHeaders)
	hkick     chan struct{} // wakes writeLoop when hq fills
	enc       *hpack.Encoder
	encBuf    []byte
	lowered   map[string]string // see lower
	nextID    uint32

	// The header block being read; the read loop's alone.
	hdec    hpackReader
	hblock  []byte    // a block's fragments until its END_HEADERS
	hid     uint32    // its stream
	hend    bool      // it ends the stream
	hst     *h2Stream // its stream while it is decoded
	htrail  bool      // it is the stream's trailers
	hstatus int       // its :status; 0 none yet, -1 malformed
	hsize   int       // its fields' size as SETTINGS_MAX_HEADER_LIST_SIZE counts

	mu        sync.Mutex
	cond      *sync.Cond // broadcast on window, settings and closing changes, and streams' ends
	slots     *sync.Cond // signalled when a slot frees (see reserve)
	streams   map[uint32]*h2Stream
	active    int    // streams opened (or reserved) and not yet done
	maxStream uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	maxFrame  uint32 // the server's SETTINGS_MAX_FRAME_SIZE
	initWin   int32  // the server's SETTINGS_INITIAL_WINDOW_SIZE
	sendWin   int64  // the connection's send window
	recvUnack int64  // DATA bytes received since the last connection WINDOW_UPDATE
	goAway    *GoAwayError
	spent     atomic.Bool   // set with err or goAway, or once the stream ids run out (see usable)
	watches   []h2Watch     // the contexts whose end cancels their streams (see watch)
	settings  chan struct{} // closed once the server's first SETTINGS are in
	err       error         // set once the connection is done
	byServer  bool
	done      chan struct{}
}

// dial opens an HTTP/2 connection: TCP, TLS with ALPN when configured,
// the client preface and SETTINGS, then starts its reader.
func (w *H2Client) dial(ctx context.Context) (*H2Conn, error) {
	t0 := time.Now()
	nc, err := connect(ctx, w.dialer, &w.cfg, &w.stats)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*tls.Conn); ok {
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			nc.Close()
			return nil, &ProtocolError{Reason: fmt.Sprintf("server negotiated %q by ALPN, not h2: replay with --protocol h1", p)}
		}
	}
	c := newH2Conn(w, nc)
	if err := c.start(); err != nil {
		nc.Close()
		return nil, err
	}
	w.stats.opened(time.Since(t0))
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		c.close(ErrClosed, false)
		return nil, ErrClosed
	}
	w.open[c] = struct{}{}
	w.mu.Unlock()
	go c.readLoop()
	go c.writeLoop()
	go c.sweepLoop()
	// The server's SETTINGS come first: waiting for them makes the first
	// streams respect its concurrency limit rather than be refused.
	t := time.NewTimer(w.cfg.ConnectTimeout)
	defer t.Stop()
	select {
	case <-c.settings:
	case <-c.done:
		return nil, c.err
	case <-t.C:
		c.close(&ProtocolError{Reason: "no SETTINGS from the server: is it HTTP/2? replay with --protocol h1"}, false)
		return nil, c.err
	case <-ctx.Done():
		c.close(ctx.Err(), false)
		return nil, ctx.Err()
	}
	return c, nil
}

func newH2Conn(w *H2Client, nc net.Conn) *H2Conn {
	c := &H2Conn{w: w, nc: nc, nextID: 1, streams: make(map[uint32]*h2Stream),
		maxStream: 1 << 31, maxFrame: 16 << 10, initWin: 65535, sendWin: 65535, done: make(chan struct{}), settings: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	c.slots = sync.NewCond(&c.mu)
	c.wcond = sync.NewCond(&c.wmu)
	c.hkick = make(chan struct{}, 1)
	c.fr = http2.NewFramer((*h2WriteBuf)(c), bufio.NewReaderSize(nc, 32<<10))
	c.fr.SetReuseFrames() // handle copies what it keeps of a frame
	c.enc = hpack.NewEncoder(&h2EncBuf{c})
	return c
}

// h2EncBuf appends the encoder's output to the connection's header block.
type h2EncBuf struct{ c *H2Conn }

func (b *h2EncBuf) Write(p []byte) (int, error) {
	b.c.encBuf = append(b.c.encBuf, p...)
	return len(p), nil
}

// start writes the preface, the client's SETTINGS (a large initial window,
// no push, no HPACK dynamic table: see hpackReader) and a connection
// WINDOW_UPDATE up to the same window.
func (c *H2Conn) start() error {
	c.nc.SetWriteDeadline(time.Now().Add(c.w.cfg.ConnectTimeout))
	defer c.nc.SetWriteDeadline(time.Time{})
	c.wbuf = append(c.wbuf, http2.ClientPreface...)
	c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2Window},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
		http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0},
	)
	c.fr.WriteWindowUpdate(0, h2Window-65535)
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return err
}

// readLoop reads the server's frames until the connection ends.
func (c *H2Conn) readLoop() {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				err = &ProtocolError{Reason: err.Error()}
			} else if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.close(err, true)
			return
		}
		if err := c.handle(f); err != nil {
			c.close(err, true)
			return
		}
	}
}

// handle acts on one frame from the server; an error ends the connection.
func (c *H2Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		c.mu.Lock()
		err := f.ForeachSetting(func(s http2.Setting) error {
			switch s.ID {
			case http2.SettingMaxConcurrentStreams:
				c.maxStream = s.Val
			case http2.SettingMaxFrameSize:
				c.maxFrame = s.Val
			case http2.SettingInitialWindowSize:
				d := int64(s.Val) - int64(c.initWin)
				c.initWin = int32(s.Val)
				for _, st := range c.streams {
					st.sendWin += d
				}
			}
			return nil
		})
		c.wakeAll()
		c.mu.Unlock()
		if err != nil {
			return err
		}
		err = c.writeFrames(func() error { return c.fr.WriteSettingsAck() })
		select {
		case <-c.settings:
		default:
			close(c.settings)
		}
		return err
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		return c.writeFrames(func() error { return c.fr.WritePing(true, f.Data) })
	case *http2.WindowUpdateFrame:
		c.mu.Lock()
		if f.StreamID == 0 {
			c.sendWin += int64(f.Increment)
		} else if st := c.streams[f.StreamID]; st != nil {
			st.sendWin += int64(f.Increment)
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	case *http2.GoAwayFrame:
		c.goaway(f.LastStreamID, f.ErrCode)
	case *http2.RSTStreamFrame:
		c.finish(f.StreamID, &StreamError{ID: f.StreamID, Code: f.ErrCode})
	case *http2.HeadersFrame:
		c.hid, c.hend = f.StreamID, f.StreamEnded()
		if !f.HeadersEnded() {
			c.hblock = append(c.hblock[:0], f.HeaderBlockFragment()...)
			return nil
		}
		return c.headers(f.HeaderBlockFragment())
	case *http2.ContinuationFrame:
		// The framer saw to it that this continues c.hid's block.
		if len(c.hblock)+len(f.HeaderBlockFragment()) > h2MaxHeaderBlock {
			return &ProtocolError{Reason: fmt.Sprintf("stream %d: a header block over %d bytes", c.hid, h2MaxHeaderBlock)}
		}
		c.hblock = append(c.hblock, f.HeaderBlockFragment()...)
		if !f.HeadersEnded() {
			return nil
		}
		err := c.headers(c.hblock)
		c.hblock = c.hblock[:0]
		return err
	case *http2.DataFrame:
		return c.data(f)
	case *http2.PushPromiseFrame:
		return &ProtocolError{Reason: "server pushed though push was disabled"}
	}
	return nil
}

// goaway notes the server's GOAWAY: no new stream goes on the connection,
// and the streams above its last id fail as unprocessed.
func (c *H2Conn) goaway(last uint32, code http2.ErrCode) {
	c.mu.Lock()
	c.goAway = &GoAwayError{LastStreamID: last, Code: code}
	c.spent.Store(true)
	var gone []*h2Stream
	for id, st := range c.streams {
		if id > last {
			gone = append(gone, st)
		}
	}
	c.wakeAll()
	c.mu.Unlock()
	for _, st := range gone {
		c.finish(st.id, &GoAwayError{LastStreamID: last, Code: code, Unprocessed: true})
	}
}

// The bounds of a response's header block: the list size the client
// advertises (SETTINGS_MAX_HEADER_LIST_SIZE), past which fields are
// dropped as the x/net framer did, and the encoded size past which the
// connection is broken.
const (
	h2MaxHeaderList  = 1 << 20
	h2MaxHeaderBlock = 4 << 20
)

// headers hands stream c.hid its response headers or trailers, decoded
// from block; the stream ends there when c.hend. A block that does not
// decode breaks the connection (RFC 9113 §4.3); a block for a stream no
// longer open is not decoded, as decoding changes no state (see
// hpackReader).
func (c *H2Conn) headers(block []byte) error {
	c.mu.Lock()
	st := c.streams[c.hid]
	c.mu.Unlock()
	if st == nil {
		return nil
	}
	c.hst, c.hsize, c.hstatus = st, 0, 0
	c.htrail = st.gotFin
	err := c.hdec.decode(block, (*h2BlockSink)(c))
	c.hst = nil
	if err != nil {
		return &ProtocolError{Reason: fmt.Sprintf("stream %d: %v", c.hid, err)}
	}
	if !c.htrail {
		switch {
		case c.hstatus <= 0:
			c.finish(c.hid, &ProtocolError{Reason: fmt.Sprintf("stream %d: a response without a valid :status", c.hid)})
			return nil
		case c.hstatus >= 100 && c.hstatus < 200:
			// An interim response: the final one follows.
		default:
			st.gotFin = true
			st.resp.Proto, st.resp.Status = "HTTP/2.0", c.hstatus
		}
	}
	if c.hend {
		c.finish(c.hid, nil)
	}
	return nil
}

// h2BlockSink takes the fields of the block headers decodes into the
// stream c.hst (see hpackSink).
type h2BlockSink H2Conn

// keep accepts what the stream keeps of a block: the final response's
// :status, its regular fields unless the stream asked for the status
// alone, and its trailers; a trailers-only response (gRPC) keeps its
// grpc-status and grpc-message as trailers too.
func (c *h2BlockSink) keep(name []byte) bool {
	switch {
	case len(name) > 0 && name[0] == ':':
		return !c.htrail && string(name) == ":status"
	case c.htrail:
		return true
	case c.hstatus >= 100 && c.hstatus < 200:
		return false
	}
	return c.hst.limit >= 0 || c.hend && grpcStatusField(name)
}

func grpcStatusField(name []byte) bool {
	return string(name) == "grpc-status" || string(name) == "grpc-message"
}

// field takes a field keep accepted.
func (c *h2BlockSink) field(name, value []byte) {
	if len(name) > 0 && name[0] == ':' { // :status, the one pseudo-header field kept
		c.hstatus = h2Status(value)
		return
	}
	if c.hsize += len(name) + len(value) + 32; c.hsize > h2MaxHeaderList {
		return
	}
	st := c.hst
	h := session.Header{Name: string(name), Value: string(value)}
	if c.htrail {
		st.resp.Trailer = append(st.resp.Trailer, h)
		return
	}
	if st.limit >= 0 {
		st.resp.Header = append(st.resp.Header, h)
	}
	if c.hend && grpcStatusField(name) {
		st.resp.Trailer = append(st.resp.Trailer, h)
	}
}

// h2Status reads a :status value: three digits, else -1.
func h2Status(v []byte) int {
	if len(v) != 3 {
		return -1
	}
	n := 0
	for _, b := range v {
		if b < '0' || b > '9' {
			return -1
		}
		n = n*10 + int(b-'0')
	}
	return n
}

// data hands a stream its DATA and gives the server back its window.
func (c *H2Conn) data(f *http2.DataFrame) error {
	n := int64(f.Length)
	c.mu.Lock()
	st := c.streams[f.StreamID]
	c.recvUnack += n
	connUpd := c.recvUnack
	if connUpd >= h2WindowUpdate {
		c.recvUnack = 0
	} else {
		connUpd = 0
	}
	var streamUpd int64
	if st != nil {
		st.recvUnack += n
		if st.recvUnack >= h2WindowUpdate && !f.StreamEnded() {
			streamUpd, st.recvUnack = st.recvUnack, 0
		}
	}
	if st != nil && connUpd == 0 && streamUpd == 0 {
		// No window to give back: the stream takes its DATA, and ends,
		// under the one lock.
		st.body(f.Data())
		if f.StreamEnded() {
			c.finishLocked(st, nil)
		}
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if connUpd > 0 || streamUpd > 0 {
		err := c.writeFrames(func() error {
			if connUpd > 0 {
				c.fr.WriteWindowUpdate(0, uint32(connUpd))
			}
			if streamUpd > 0 {
				c.fr.WriteWindowUpdate(f.StreamID, uint32(streamUpd))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if st == nil {
		return nil
	}
	st.body(f.Data())
	if f.StreamEnded() {
		c.finish(f.StreamID, nil)
	}
	return nil
}

// finish ends stream id with err (nil: the response is whole) and frees
// its slot.
func (c *H2Conn) finish(id uint32, err error) {
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		c.finishLocked(st, err)
	}
	c.mu.Unlock()
}

// finishLocked is finish of st, which is open; c.mu is held. The stream
// ends under mu, so that a goroutine waiting on the connection for its
// window finds it ended once woken.
func (c *H2Conn) finishLocked(st *h2Stream, err error) {
	delete(c.streams, st.id)
	st.end(err)
	c.release()
}

// release frees the slot of a stream that ended; c.mu is held. One
// stream waiting for a slot is woken, not all of them: a broadcast woke
// every stream waiting on the connection, each to find the one slot
// taken but one, and at --speed max against a server that allows 16
// streams a connection about a stream in four waits. The waiters on
// cond (a window, the connection's drain) are woken as before.
func (c *H2Conn) release() {
	c.active--
	c.slots.Signal() // with no waiter, Signal and Broadcast return at once
	c.cond.Broadcast()
}

// wakeAll wakes every goroutine waiting on the connection, for a slot, a
// window or its drain, to look at its state again; c.mu is held.
func (c *H2Conn) wakeAll() {
	c.cond.Broadcast()
	c.slots.Broadcast()
}

// close ends the connection and every stream on it with err.
func (c *H2Conn) close(err error, byServer bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err, c.byServer = err, byServer
	c.spent.Store(true)
	streams := c.streams
	c.streams = map[uint32]*h2Stream{}
	c.active = 0
	for _, w := range c.watches {
		w.stop()
	}
	c.watches = nil
	close(c.done)
	c.wakeAll()
	c.mu.Unlock()
	c.nc.Close()
	for _, st := range streams {
		st.end(err)
	}
	c.w.mu.Lock()
	_, open := c.w.open[c]
	delete(c.w.open, c)
	c.w.mu.Unlock()
	if open {
		c.w.stats.closed(byServer)
	}
}

// usable reports whether a new stream may go on c: it has not ended, had
// a GOAWAY or run out of stream ids. Every stream asks, so it takes no
// lock.
func (c *H2Conn) usable() bool { return !c.spent.Load() }

// h2Stream is one stream's response as it arrives. The reader goroutine
// fills it; the stream's own goroutine reads it once it ended (see end
// and wait).
type h2Stream struct {
	id        uint32
	sendWin   int64 // guarded by the connection's mu
	recvUnack int64 // guarded by the connection's mu

	limit int64 // body bytes kept; -1 none

	deadline atomic.Int64    // when the sweeper ends it (Unix ns); 0 while its request is still being sent
	ctxDone  <-chan struct{} // its context's Done, for the connection's watch

	resp   session.Response
	n      int64
	gotFin bool // final (non-1xx) headers arrived
	err    error
	// state is h2Open until end, then h2Ending while it sets err and
	// h2Ended after; fin is done then, for the stream's goroutine, and
	// done closed, for a stream that sends a body (writeBody selects on
	// it; a stream without one has none, a channel being an allocation
	// of 96 bytes a stream).
	state atomic.Int32
	fin   sync.WaitGroup
	done  chan struct{}
	// hstate is where the stream's queued HEADERS are: hQueued, hWritten
	// or hDropped (see queueHeaders).
	hstate atomic.Int32
}

func (st *h2Stream) body(p []byte) {
	st.n += int64(len(p))
	if st.limit > 0 {
		if room := st.limit - int64(len(st.resp.Body)); room > 0 {
			st.resp.Body = append(st.resp.Body, p[:min(int64(len(p)), room)]...)
		}
	}
}

// The states of a stream (h2Stream.state).
const (
	h2Open = iota
	h2Ending
	h2Ended
)

// newH2Stream returns a stream keeping limit bytes of the response body
// (-1: none), sent under ctx; withBody gives it a done channel.
func newH2Stream(limit int64, ctx context.Context, withBody bool) *h2Stream {
	st := &h2Stream{limit: limit, ctxDone: ctx.Done()}
	st.fin.Add(1)
	if withBody {
		st.done = make(chan struct{})
	}
	return st
}

// end ends the stream with err (nil: its response is whole); the first
// call alone counts.
func (st *h2Stream) end(err error) {
	if !st.state.CompareAndSwap(h2Open, h2Ending) {
		return
	}
	if err == nil && !st.gotFin {
		err = &ProtocolError{Reason: fmt.Sprintf("stream %d ended without a response", st.id)}
	}
	st.err = err
	st.state.Store(h2Ended)
	if st.done != nil {
		close(st.done)
	}
	st.fin.Done()
}

// wait waits for the stream's end.
func (st *h2Stream) wait() { st.fin.Wait() }

// ended reports whether the stream is done; its err may be read then.
func (st *h2Stream) ended() bool { return st.state.Load() == h2Ended }

// streamTimeout is how long a stream waits for its response: Timeout, or
// an hour when none is set.
func (c *Config) streamTimeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return time.Hour
}

// sweepLoop ends the streams past their deadline, every 1/16 of the
// timeout (between a millisecond and a second), until the connection ends.
func (c *H2Conn) sweepLoop() {
	every := min(max(c.w.cfg.streamTimeout()/16, time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var late []*h2Stream
	for {
		select {
		case <-t.C:
		case <-c.done:
			return
		}
		now := time.Now().UnixNano()
		c.mu.Lock()
		for _, st := range c.streams {
			if d := st.deadline.Load(); d != 0 && d <= now {
				late = append(late, st)
			}
		}
		c.mu.Unlock()
		for i, st := range late {
			c.cancel(st, fmt.Errorf("http2 stream %d: no response in %v: %w", st.id, c.w.cfg.streamTimeout(), context.DeadlineExceeded))
			late[i] = nil
		}
		late = late[:0]
	}
}

// h2Watch is a context whose end cancels the connection's streams sent
// under it.
type h2Watch struct {
	done <-chan struct{}
	stop func() bool
}

// h2MaxWatches bounds the contexts a connection watches: a replay sends
// every stream under its run's context; a caller with a context per
// stream gets a watch per stream (see watch).
const h2MaxWatches = 4

// watch sees that st is cancelled when ctx ends. The caller checks
// ctx.Err() after watch, for a context that ended before.
func (c *H2Conn) watch(ctx context.Context, st *h2Stream) (stop func() bool) {
	if ctx.Done() == nil {
		return nil // never ends
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watchLocked(ctx, st)
}

// watchLocked sees that the end of ctx cancels st (when not nil) and wakes
// the waiters on c.cond; c.mu is held. A context the connection already
// watches costs nothing more; the first few get a watch of the
// connection's, which cancels every stream sent under them, and others a
// watch of their own, whose stop func the caller calls once it no longer
// needs it.
func (c *H2Conn) watchLocked(ctx context.Context, st *h2Stream) (stop func() bool) {
	done := ctx.Done()
	if done == nil {
		return nil
	}
	for _, w := range c.watches {
		if w.done == done {
			return nil
		}
	}
	if c.err != nil {
		return nil // the connection's end ended st
	}
	if len(c.watches) < h2MaxWatches {
		stop := context.AfterFunc(ctx, func() { c.cancelUnder(done, ctx.Err()) })
		c.watches = append(c.watches, h2Watch{done: done, stop: stop})
		return nil
	}
	return context.AfterFunc(ctx, func() {
		if st != nil {
			c.cancel(st, ctx.Err())
		}
		c.mu.Lock()
		c.wakeAll()
		c.mu.Unlock()
	})
}

// cancelUnder cancels the streams sent under the context whose Done is
// done, and wakes the waiters for a slot or a window.
func (c *H2Conn) cancelUnder(done <-chan struct{}, err error) {
	var gone []*h2Stream
	c.mu.Lock()
	for _, st := range c.streams {
		if st.ctxDone == done {
			gone = append(gone, st)
		}
	}
	c.wakeAll()
	c.mu.Unlock()
	for _, st := range gone {
		c.cancel(st, err)
	}
}
