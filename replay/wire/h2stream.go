package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
)

// H2Request is what goes on an HTTP/2 stream: Request's method (:method),
// target (:path), host (:authority), header fields in recorded order (the
// recorded pseudo-header fields give their order; hop-by-hop fields are
// dropped, RFC 9113 §8.2.2) and body, then the trailers.
//
// Request is the caller's, not a copy (a Request is large): a status-only
// response is kept in it, as Client.Do keeps it, and it must not change
// until Do returns.
type H2Request struct {
	*Request
	Scheme  string // :scheme; "" for http, or https when the client speaks TLS
	Trailer session.Headers
	// Parts, when set, split Body into pieces sent each at its offset after
	// the stream opened (a gRPC stream's messages, at their recorded
	// offsets scaled by the speed); a piece ends at End bytes into Body.
	// Without them the body goes at once.
	Parts []H2Part
	// GRPC says the response is judged by its grpc-status too.
	GRPC bool
}

// H2Part is one piece of a request body and when it is due.
type H2Part struct {
	End int
	At  time.Duration
}

// GRPCParts returns the parts of a gRPC stream's request body: each
// client message of the recorded stream g due at its recorded offset
// within the stream divided by speed (speed 0 or less: every message at
// once, as for --speed max). The messages' ends are read from body, the
// body about to be sent, whose messages may have changed length since the
// recording (live values substituted); past what body frames whole, the
// recorded sizes. The replay engine and the shadow mirror send gRPC
// streams this way.
func GRPCParts(g *session.GRPC, body []byte, speed float64) []H2Part {
	var parts []H2Part
	end := 0
	for _, m := range g.Messages {
		if m.FromServer {
			continue
		}
		size := int(m.Size)
		if rest := body[min(end, len(body)):]; len(rest) >= 5 {
			if n := binary.BigEndian.Uint32(rest[1:5]); uint64(n) <= uint64(len(rest)-5) {
				size = int(n)
			}
		}
		end += 5 + size
		p := H2Part{End: end}
		if speed > 0 {
			p.At = time.Duration(float64(m.At) / speed)
		}
		parts = append(parts, p)
	}
	return parts
}

// errNotSent is a stream that never reached the wire: its connection
// ended first.
var errNotSent = errors.New("http2: connection ended before the stream was sent")

// roundTrip sends req as a new stream on c and waits for its response.
func (c *H2Conn) roundTrip(ctx context.Context, req *H2Request) (*session.Response, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	limit := c.w.cfg.BodyLimit
	if req.StatusOnly {
		limit = -1
	}
	endNow := len(req.Body) == 0 && len(req.Trailer) == 0
	st := newH2Stream(limit, ctx, !endNow)
	if err := c.reserve(ctx); err != nil {
		return nil, 0, err
	}
	start := time.Now()
	if endNow {
		if err := c.queueHeaders(st, req); err != nil {
			return nil, 0, err
		}
		defer c.settle(st)
	} else {
		st.hstate.Store(hWritten)
		if err := c.writeHeaders(st, req, false); err != nil {
			return nil, 0, err
		}
		// A stream that ended before its body was all sent (the server
		// answered early, reset it or went away) has that end for its
		// outcome.
		if err := c.writeBody(ctx, st, req, start); err != nil && !st.ended() {
			c.cancel(st, err)
			return nil, 0, err
		}
	}
	// The wait is for the stream's end alone: the connection's sweeper
	// ends the stream at its deadline and its watch when ctx ends (see
	// watch), a select over three channels and a timer per stream having
	// cost a tenth of the HTTP/2 path.
	if !endNow {
		start = time.Now() // the timeout runs from the request's end, as on HTTP/1
	}
	st.deadline.Store(start.Add(c.w.cfg.streamTimeout()).UnixNano())
	if stop := c.watch(ctx, st); stop != nil {
		defer stop()
	}
	if err := ctx.Err(); err != nil {
		c.cancel(st, err) // ended before the watch was in place
	}
	st.wait()
	if st.err != nil {
		return nil, 0, st.err // the reader may still be filling st after a cancel
	}
	resp := &st.resp
	if req.StatusOnly {
		req.status = *resp
		resp = &req.status
	}
	if req.GRPC {
		if err := grpcStatus(resp); err != nil {
			return resp, st.n, err
		}
	}
	return resp, st.n, nil
}

// grpcStatus returns a *GRPCError unless the response's grpc-status is 0;
// a response without one is UNKNOWN (2), as grpc-go takes it.
func grpcStatus(resp *session.Response) error {
	v := resp.Trailer.Get("grpc-status")
	if v == "" {
		v = resp.Header.Get("grpc-status")
	}
	if v == "0" {
		return nil
	}
	code, err := strconv.Atoi(v)
	if err != nil {
		return &GRPCError{Code: 2, Message: "no grpc-status in the response"}
	}
	return &GRPCError{Code: code, Message: resp.Trailer.Get("grpc-message")}
}

// reserve takes a stream slot under the server's concurrency limit,
// waiting (and counting the wait) while it is full. A stream that ends
// wakes one waiting stream (see release), which may find its slot taken
// by a stream that came meanwhile and wait again.
func (c *H2Conn) reserve(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && c.goAway == nil && uint32(c.active) < c.maxStream {
		c.active++ // a free slot: nothing to wait for, nothing to wake
		return nil
	}
	if stop := c.watchLocked(ctx, nil); stop != nil {
		defer stop()
	}
	waited := false
	for {
		var err error
		switch {
		case c.err != nil:
			err = fmt.Errorf("%w: %w", errNotSent, c.err)
		case c.goAway != nil:
			g := *c.goAway
			g.Unprocessed = true
			err = &g
		case ctx.Err() != nil:
			err = ctx.Err()
		case uint32(c.active) < c.maxStream:
			c.active++
			return nil
		}
		if err != nil {
			if uint32(c.active) < c.maxStream {
				c.slots.Signal() // the wake this stream may have had, to another
			}
			return err
		}
		if !waited {
			waited = true
			c.w.waits.add()
		}
		c.slots.Wait()
	}
}

// writeHeaders opens the stream: it takes the next id, registers st and
// writes the header block (HEADERS and CONTINUATION frames).
func (c *H2Conn) writeHeaders(st *h2Stream, req *H2Request, end bool) (err error) {
	c.lockW()
	defer func() { err = c.unlockW(err) }()
	if err := c.open(st); err != nil {
		return err
	}
	c.mu.Lock()
	maxFrame := int(c.maxFrame)
	c.mu.Unlock()
	c.encBuf = c.encBuf[:0]
	c.encodeRequest(req)
	err = c.writeBlock(st.id, c.encBuf, end, maxFrame)
	if err != nil {
		c.close(err, true)
	}
	return err
}

// writeBlock writes a header block as HEADERS and CONTINUATION frames;
// the write lock is held (see lockW).
func (c *H2Conn) writeBlock(id uint32, block []byte, end bool, maxFrame int) error {
	first := block[:min(len(block), maxFrame)]
	block = block[len(first):]
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first,
		EndStream: end, EndHeaders: len(block) == 0}); err != nil {
		return err
	}
	for len(block) > 0 {
		frag := block[:min(len(block), maxFrame)]
		block = block[len(frag):]
		if err := c.fr.WriteContinuation(id, len(block) == 0, frag); err != nil {
			return err
		}
	}
	return nil
}

// encodeRequest encodes req's header block into c.encBuf: the
// pseudo-header fields in their recorded order with the live values (the
// four of a request in RFC order when none were recorded), then the
// regular fields in recorded order with lower-case names.
func (c *H2Conn) encodeRequest(req *H2Request) {
	scheme := req.Scheme
	if scheme == "" {
		scheme = "http"
		if c.w.cfg.TLS != nil {
			scheme = "https"
		}
	}
	live := func(name string) (string, bool) {
		switch name {
		case ":method":
			return req.Method, true
		case ":scheme":
			return scheme, true
		case ":authority":
			return req.Host, true
		case ":path":
			return req.Target, true
		}
		return "", false
	}
	var sent [4]bool
	for _, h := range req.Header {
		if !strings.HasPrefix(h.Name, ":") {
			continue
		}
		v, ok := live(h.Name)
		if !ok {
			v = h.Value // :protocol of an extended CONNECT
		} else {
			sent[pseudoIndex(h.Name)] = true
		}
		c.enc.WriteField(hpack.HeaderField{Name: h.Name, Value: v})
	}
	for i, name := range [4]string{":method", ":scheme", ":authority", ":path"} {
		if !sent[i] {
			v, _ := live(name)
			c.enc.WriteField(hpack.HeaderField{Name: name, Value: v})
		}
	}
	c.encodeFields(req.Header)
	if len(req.Body) > 0 && req.Parts == nil && !req.GRPC {
		c.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(req.Body))})
	}
}

func pseudoIndex(name string) int {
	switch name {
	case ":method":
		return 0
	case ":scheme":
		return 1
	case ":authority":
		return 2
	}
	return 3
}

// encodeFields encodes the regular fields of h that HTTP/2 may carry;
// the write lock is held.
func (c *H2Conn) encodeFields(h session.Headers) {
	listed := http1.HasConnection(h)
	for _, f := range h {
		if !H2Sendable(f) || listed && http1.Listed(h, f.Name) {
			continue
		}
		c.enc.WriteField(hpack.HeaderField{Name: c.lower(f.Name), Value: f.Value})
	}
}

// lower returns name in lower case (HTTP/2 field names are), from a cache
// of the names an HTTP/1 recording spells in capitals (User-Agent), so
// that each of its requests does not allocate them anew; the write lock
// is held.
func (c *H2Conn) lower(name string) string {
	if l, ok := c.lowered[name]; ok {
		return l
	}
	l := strings.ToLower(name)
	if l != name && len(c.lowered) < 256 {
		if c.lowered == nil {
			c.lowered = make(map[string]string)
		}
		c.lowered[name] = l
	}
	return l
}

// H2Sendable reports whether a recorded regular header field goes on an
// HTTP/2 stream: not a pseudo-header field (written apart), not a
// connection-specific field (RFC 9113 §8.2.2: Connection, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade; TE unless "trailers"),
// nor Host (:authority says it) or Content-Length (the sender's).
func H2Sendable(h session.Header) bool {
	if http1.EqualFold(h.Name, "TE") {
		return strings.EqualFold(strings.TrimSpace(h.Value), "trailers")
	}
	if len(h.Name) > 0 && h.Name[0] == ':' {
		return false
	}
	return Sendable(h)
}

// writeBody writes req's body as DATA frames, each piece at its offset
// after start, within the flow-control windows, then the trailers.
func (c *H2Conn) writeBody(ctx context.Context, st *h2Stream, req *H2Request, start time.Time) error {
	parts := req.Parts
	if parts == nil {
		parts = []H2Part{{End: len(req.Body)}}
	}
	from := 0
	for i, p := range parts {
		if p.At > 0 {
			if d := time.Until(start.Add(p.At)); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-st.done:
					t.Stop()
					return nil // the server answered before the client was done
				}
			}
		}
		end := min(max(p.End, from), len(req.Body))
		last := i == len(parts)-1
		if last {
			end = len(req.Body)
		}
		if err := c.writeData(ctx, st, req.Body[from:end], last && len(req.Trailer) == 0); err != nil {
			return err
		}
		from = end
	}
	if len(req.Trailer) == 0 {
		return nil
	}
	c.lockW()
	c.encBuf = c.encBuf[:0]
	c.encodeFields(req.Trailer)
	c.mu.Lock()
	maxFrame := int(c.maxFrame)
	c.mu.Unlock()
	return c.unlockW(c.writeBlock(st.id, c.encBuf, true, maxFrame))
}

// writeData writes p as DATA frames as the windows allow.
func (c *H2Conn) writeData(ctx context.Context, st *h2Stream, p []byte, end bool) error {
	for first := true; first || len(p) > 0; first = false {
		n, err := c.window(ctx, st, len(p))
		if err != nil {
			return err
		}
		chunk := p[:n]
		p = p[n:]
		err = c.writeFrames(func() error { return c.fr.WriteData(st.id, end && len(p) == 0, chunk) })
		if err != nil {
			return err
		}
	}
	return nil
}

// window takes up to want bytes of the connection's and the stream's send
// windows (and at most a frame), waiting while either is empty.
func (c *H2Conn) window(ctx context.Context, st *h2Stream, want int) (int, error) {
	if want == 0 {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := min(int64(want), c.sendWin, st.sendWin, int64(c.maxFrame)); n > 0 && c.err == nil && !st.ended() {
		c.sendWin -= n // room at once: nothing to wait for, nothing to wake
		st.sendWin -= n
		return int(n), nil
	}
	if stop := c.watchLocked(ctx, st); stop != nil {
		defer stop()
	}
	for {
		if c.err != nil {
			return 0, c.err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if st.ended() {
			return 0, st.errOr(errNotSent)
		}
		if n := min(int64(want), c.sendWin, st.sendWin, int64(c.maxFrame)); n > 0 {
			c.sendWin -= n
			st.sendWin -= n
			return int(n), nil
		}
		c.cond.Wait()
	}
}

// errOr returns the stream's error, or err when it ended well.
func (st *h2Stream) errOr(err error) error {
	if st.err != nil {
		return st.err
	}
	return err
}

// cancel resets st (RST_STREAM CANCEL) and ends it with err.
func (c *H2Conn) cancel(st *h2Stream, err error) {
	if st.ended() {
		return
	}
	_ = c.writeFrames(func() error { return c.fr.WriteRSTStream(st.id, http2.ErrCodeCancel) })
	c.finish(st.id, err)
}

// H2Line is one HTTP/2 connection that a caller keeps for the streams of
// one recorded connection: they go on it concurrently, as they went on
// the recorded one. It opens when first used (or by Open); after the
// server's GOAWAY or the connection's end, the next stream opens a new
// one. Its methods may be called from many goroutines.
type H2Line struct {
	w  *H2Client
	mu sync.Mutex             // held to replace c
	c  atomic.Pointer[H2Conn] // read without mu by the streams that find it usable
}

// NewLine returns a line of w, with no connection open yet.
func (w *H2Client) NewLine() *H2Line { return &H2Line{w: w} }

// Open opens the line's connection unless it has a usable one.
func (l *H2Line) Open(ctx context.Context) error {
	_, err := l.conn(ctx)
	return err
}

func (l *H2Line) conn(ctx context.Context) (*H2Conn, error) {
	if c := l.c.Load(); c != nil && c.usable() {
		return c, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.c.Load()
	if old != nil && old.usable() {
		return old, nil
	}
	c, err := l.w.dial(ctx)
	if err != nil {
		return nil, err
	}
	if old != nil {
		old.drain()
	}
	l.c.Store(c)
	return c, nil
}

// Do sends req as a stream of the line's connection and reads its
// response. A stream the server left unprocessed (above a GOAWAY's last
// stream id) or that never reached the wire is sent once more on a new
// connection when sending it twice does no harm (see idempotent); else
// its error says so (KindGoAway). A gRPC response with a non-OK
// grpc-status comes with a *GRPCError.
func (l *H2Line) Do(ctx context.Context, req *H2Request) (*session.Response, int64, error) {
	for attempt := 0; ; attempt++ {
		c, err := l.conn(ctx)
		if err != nil {
			return nil, 0, err
		}
		resp, n, err := c.roundTrip(ctx, req)
		if err == nil || attempt > 0 || !unsent(err) {
			return resp, n, err
		}
		var g *GoAwayError
		if errors.As(err, &g) && !req.idempotent() {
			return nil, n, err
		}
	}
}

// unsent reports whether err says the stream was never acted on.
func unsent(err error) bool {
	var g *GoAwayError
	var se *StreamError
	return errors.Is(err, errNotSent) || errors.As(err, &g) && g.Unprocessed ||
		errors.As(err, &se) && se.Code == http2.ErrCodeRefusedStream
}

// Close closes the line's connection, if it has one.
func (l *H2Line) Close() {
	l.mu.Lock()
	c := l.c.Swap(nil)
	l.mu.Unlock()
	if c != nil {
		c.close(ErrClosed, false)
	}
}

// drain closes c once its streams are done: a connection the line left
// after a GOAWAY.
func (c *H2Conn) drain() {
	go func() {
		c.mu.Lock()
		for c.err == nil && c.active > 0 {
			c.cond.Wait()
		}
		c.mu.Unlock()
		c.close(ErrClosed, c.goAway != nil)
	}()
}

// Do sends req on the client's shared connection (a pooled replay's
// HTTP/2 streams share one, as a browser's do).
func (w *H2Client) Do(ctx context.Context, req *H2Request) (*session.Response, int64, error) {
	w.mu.Lock()
	if w.shared == nil {
		w.shared = w.NewLine()
	}
	l := w.shared
	w.mu.Unlock()
	return l.Do(ctx, req)
}
