// Package wire is Reprise's one HTTP/1.1 request sender: the replay
// engine and the shadow mirror both put their requests on the wire with
// its Client, and classify its errors with Kind.
//
// A Client writes each request as recorded: header names in their
// recorded case and order, repeated fields as they were, less the
// hop-by-hop fields (session/http1). net/http's client canonicalises names
// and sorts them, and hands every exchange through two goroutines per
// connection; this one uses the calling goroutine and one buffered reader
// and writer per connection, which is what lets a --speed max replay keep
// up with wrk. Responses are framed by session/http1, parsed in place in
// the reader's buffer.
package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
)

// Config is what a Client needs.
type Config struct {
	Addr           string        // host:port to dial
	TLS            *tls.Config   // nil for http
	ConnectTimeout time.Duration // bounds a dial and a TLS handshake
	Timeout        time.Duration // bounds each exchange
	MaxIdle        int           // connections kept alive for reuse
	BodyLimit      int64         // body bytes kept of a response; the rest is counted
	KeepReason     bool          // keep the status line's reason phrase
}

// Client sends requests over a pool of kept-alive connections.
//
// Connections are kept alive in a pool of at most MaxIdle; a request takes
// an idle one or dials. Deadlines bound each exchange. CloseAll aborts
// every connection at once (the run's context ended). Taking and giving
// back a connection is one short critical section each: the set of open
// connections changes only when one is dialled or closed.
type Client struct {
	cfg       Config
	dialer    *net.Dialer
	bufSize   int
	readLimit int64

	mu     sync.Mutex
	idle   []*Conn            // kept alive; the last one given back is taken first
	open   map[*Conn]struct{} // every connection not yet closed, idle or in use
	closed bool

	stats connStats // what its connections did (see Stats)
}

// writeBuf is a connection's write buffer: it gathers a request's pieces
// into one system call, and most requests are far smaller (a larger body
// goes to the socket directly). 64 connections held 16 KB each for it at
// --speed max. The read buffer stays at bufSize: it bounds a response
// header line.
const writeBuf = 4 << 10

// Conn is one connection of a Client, which a caller may hold from one
// request to the next (see DoOn).
type Conn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer

	head      http1.HeadReader    // reused from one response to the next
	status    http1.StatusHead    // the last head read
	chunked   http1.ChunkedReader // reused for chunked bodies
	deadline  time.Time           // the connection's read and write deadline
	used      bool                // it carried an exchange: the next one reuses it
	writes    int                 // requests written on it
	wdeadline time.Time           // a Line's write deadline (see Line.Write)
}

// New returns a client for cfg. With TLS and no ClientSessionCache, it
// keeps a session cache of its own (see withSessionCache).
func New(cfg Config) *Client {
	cfg.TLS = withSessionCache(cfg.TLS)
	return &Client{
		cfg:       cfg,
		dialer:    &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second},
		idle:      make([]*Conn, 0, cfg.MaxIdle),
		open:      make(map[*Conn]struct{}),
		bufSize:   16 << 10,
		readLimit: cfg.BodyLimit,
	}
}

// NewConn wraps an established connection, as a dialled one is wrapped;
// tests give a Client scripted connections with Idle.
func NewConn(c net.Conn) *Conn {
	return &Conn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}
}

// Idle puts c in the pool as an idle connection.
func (w *Client) Idle(c *Conn) {
	w.mu.Lock()
	w.open[c] = struct{}{}
	w.idle = append(w.idle, c)
	w.mu.Unlock()
}

// get takes an idle connection (reused reports that) or dials one.
func (w *Client) get(ctx context.Context) (c *Conn, reused bool, err error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, false, ErrClosed
	}
	if n := len(w.idle); n > 0 {
		c = w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		return c, true, nil
	}
	w.mu.Unlock()
	c, err = w.dial(ctx)
	return c, false, err
}

// dial opens a new connection (with its TLS handshake) and counts it.
func (w *Client) dial(ctx context.Context) (*Conn, error) {
	t0 := time.Now()
	nc, err := connect(ctx, w.dialer, &w.cfg, &w.stats)
	if err != nil {
		return nil, err
	}
	w.stats.opened(time.Since(t0))
	c := &Conn{c: nc, br: bufio.NewReaderSize(nc, w.bufSize), bw: bufio.NewWriterSize(nc, writeBuf)}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		nc.Close()
		w.stats.closed(false)
		return nil, ErrClosed
	}
	w.open[c] = struct{}{}
	return c, nil
}

// connect dials cfg.Addr and, when cfg.TLS is set, makes the TLS
// handshake within cfg.ConnectTimeout: the HTTP/1 and HTTP/2 clients'
// one way to open a connection. The handshake is timed apart from the
// TCP connect and counted in st (see TLSStats): a new TLS connection
// costs the target a handshake, which a replay reports.
func connect(ctx context.Context, d *net.Dialer, cfg *Config, st *connStats) (net.Conn, error) {
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil || cfg.TLS == nil {
		return nc, err
	}
	tc := tls.Client(nc, cfg.TLS)
	hctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	t0 := time.Now()
	err = tc.HandshakeContext(hctx)
	took := time.Since(t0)
	cancel()
	if err != nil {
		nc.Close()
		if ctx.Err() == nil { // a stopped run is no failure of the target's
			st.handshakeFailed(handshakeFailure(err))
		}
		return nil, err
	}
	st.handshook(took, tc.ConnectionState())
	return tc, nil
}

// Put gives c back to the pool, or closes it when the pool is full or
// closed.
func (w *Client) Put(c *Conn) {
	w.mu.Lock()
	if !w.closed && len(w.idle) < w.cfg.MaxIdle {
		w.idle = append(w.idle, c)
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	w.discard(c, false)
}

// discard closes c and forgets it; byServer says the server ended it
// (its response said so, or it had closed or reset the connection), and
// the client closed it otherwise. A connection closed already (CloseAll)
// is not counted twice.
func (w *Client) discard(c *Conn, byServer bool) {
	w.mu.Lock()
	_, open := w.open[c]
	delete(w.open, c)
	w.mu.Unlock()
	c.c.Close()
	if open {
		w.stats.closed(byServer)
	}
}

// CloseAll closes every connection, in use or idle; later requests fail
// with ErrClosed.
func (w *Client) CloseAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for c := range w.open {
		c.c.Close()
		w.stats.closed(false)
	}
	clear(w.open)
	clear(w.idle)
	w.idle = w.idle[:0]
}

// Request is what goes on the wire.
type Request struct {
	Method, Target, Host string
	Header               session.Headers // as recorded: the writer leaves out what Sendable refuses
	Body                 []byte

	// StatusOnly asks for the response's status and size alone, for a
	// request whose response nothing learns from or compares: its header
	// fields and body are read past, not kept, and the response is
	// Request's own, not a new one. Most requests of a replay are such,
	// and keeping what nobody reads was a third of a request's
	// allocation.
	StatusOnly bool
	// Close asks the server to close the connection after its response
	// (Connection: close), as the recorded client did.
	Close bool
	// At is when the caller sends it, when it has read the clock for
	// its own figures just before; the deadlines count from it, and the
	// client reads the clock itself when it is zero. A clock read was a
	// fortieth of a request's CPU on a virtual machine. Line.Read counts
	// from it too: a caller that reads the response later than just
	// after the write (one pipelined behind another) sets it again.
	At     time.Time
	status session.Response
}

// now is req.At, or the clock's time when it is not set.
func (req *Request) now() time.Time {
	if !req.At.IsZero() {
		return req.At
	}
	return time.Now()
}

// Do sends req on a pooled connection and reads the whole response,
// returning the connection to the pool after. Cancelling ctx aborts the
// exchange in flight (its connection is closed) and the error is then
// ctx's. The engine's hot path uses DoOn and CloseAll instead, which cost
// nothing per request.
func (w *Client) Do(ctx context.Context, req *Request) (*session.Response, int64, error) {
	var held *Conn
	if ctx.Done() == nil {
		resp, n, err := w.DoOn(ctx, req, &held)
		if held != nil {
			w.Put(held)
		}
		return resp, n, err
	}
	a := new(aborter)
	stop := context.AfterFunc(ctx, a.abort)
	resp, n, err := w.doOn(ctx, req, &held, a)
	if !stop() {
		if err != nil {
			err = ctx.Err()
		}
		if held != nil {
			w.discard(held, false)
			held = nil
		}
	}
	if held != nil {
		w.Put(held)
	}
	return resp, n, err
}

// aborter closes the connection an exchange uses once its context ends.
type aborter struct {
	mu      sync.Mutex
	cur     *Conn
	aborted bool
}

func (a *aborter) abort() {
	a.mu.Lock()
	a.aborted = true
	if a.cur != nil {
		a.cur.c.Close()
	}
	a.mu.Unlock()
}

// use notes c as the connection in use, closing it at once when the
// context already ended.
func (a *aborter) use(c *Conn) {
	a.mu.Lock()
	a.cur = c
	if a.aborted {
		c.c.Close()
	}
	a.mu.Unlock()
}

// DoOn sends req and reads the whole response, on *held when it is a
// connection, which the caller kept from its last request, or else on one
// from the pool; the connection, if it can carry another exchange, is
// left in *held for the caller to use again or Put back.
//
// A request on a reused connection that the server had closed (an idle
// keep-alive timeout) is retried once on a new connection when no
// response byte had arrived and either the request could not be written
// or sending it twice does no harm (see idempotent): a POST the server
// may have acted on before it closed is reported, not sent again, as
// net/http's client does. So that such a request seldom meets a closed
// connection, one taken from the pool for it is first checked (see
// alive).
func (w *Client) DoOn(ctx context.Context, req *Request, held **Conn) (*session.Response, int64, error) {
	return w.doOn(ctx, req, held, nil)
}

// doOn is DoOn, telling a (when not nil) each connection it uses.
func (w *Client) doOn(ctx context.Context, req *Request, held **Conn, a *aborter) (*session.Response, int64, error) {
	for attempt := 0; ; attempt++ {
		c, reused := *held, true
		*held = nil
		if c == nil {
			var err error
			if c, reused, err = w.get(ctx); err != nil {
				return nil, 0, err
			}
			for reused && !req.idempotent() && !c.sendable() {
				w.discard(c, true)
				if c, reused, err = w.get(ctx); err != nil {
					return nil, 0, err
				}
			}
		}
		if a != nil {
			a.use(c)
		}
		resp, n, keep, got, wrote, err := w.exchange(c, req)
		if err == nil {
			if keep {
				*held = c
			} else {
				w.discard(c, !req.Close)
			}
			return resp, n, nil
		}
		w.discard(c, Kind(err) == KindReset)
		if reused && !got && attempt == 0 && retryable(err) && (!wrote || req.idempotent()) {
			continue
		}
		return nil, n, err
	}
}

// idempotent reports whether sending the request twice has the effect of
// sending it once: its method is idempotent (RFC 9110, 9.2.2), or it
// carries an idempotency key, as net/http's client also takes it.
func (req *Request) idempotent() bool {
	switch req.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	for _, h := range req.Header {
		if strings.EqualFold(h.Name, "Idempotency-Key") || strings.EqualFold(h.Name, "X-Idempotency-Key") {
			return true
		}
	}
	return false
}

// alive reports whether an idle connection is still open: nothing is
// buffered and the socket shows neither the server's close nor bytes
// nobody asked for (see peerClosed). The close may still be on its way;
// this only narrows the window.
func (c *Conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	nc := c.c
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	return !peerClosed(nc)
}

// sendable reports whether an idle connection may carry a request that
// must not be sent twice: whether it is alive, by a look at the socket.
// The look is not skipped when the last response was read a moment ago:
// a server that closes a connection without announcing it closes right
// after a response, so that a request sent soon after is the one whose
// look finds the close.
func (c *Conn) sendable() bool {
	return c.alive()
}

func retryable(err error) bool {
	return Kind(err) == KindReset
}

// Sendable reports whether a recorded header field goes on the wire: not
// a hop-by-hop field (http1.IsHopByHop), not Host or Content-Length,
// which the sender writes itself, nor one that would break the request's
// framing. A name that the request's Connection field lists is left out
// by the writers too (see http1.Listed).
func Sendable(h session.Header) bool {
	switch len(h.Name) {
	case 0:
		return false
	case 4:
		if http1.EqualFold(h.Name, "Host") {
			return false
		}
	case 14:
		if http1.EqualFold(h.Name, "Content-Length") {
			return false
		}
	}
	return !http1.IsHopByHop(h.Name) &&
		!strings.ContainsAny(h.Name, " :\r\n\t") && !strings.ContainsAny(h.Value, "\r\n")
}

// exchange writes req on c and reads the response. wrote reports whether
// the request was written whole, got whether any response byte arrived.
func (w *Client) exchange(c *Conn, req *Request) (resp *session.Response, n int64, keep, got, wrote bool, err error) {
	// Moving a deadline updates a runtime timer, a fiftieth of a
	// request's cost at --speed max; it is moved only once it has aged
	// by 1/64 of the timeout, so each exchange is bounded by between
	// 63/64 of the timeout and the whole of it.
	now := req.now()
	if d := now.Add(w.cfg.Timeout); d.Sub(c.deadline) > w.cfg.Timeout/64 {
		c.c.SetDeadline(d)
		c.deadline = d
	}
	again, err := c.write(req)
	if err != nil {
		return nil, 0, false, false, false, err
	}
	if again {
		w.stats.reuses.Add(1)
	}
	resp, n, keep, got, err = c.read(req, w.readLimit, w.cfg.KeepReason)
	return resp, n, keep, got, true, err
}

// write puts req on c; reused says c had carried a request before.
func (c *Conn) write(req *Request) (reused bool, err error) {
	reused, c.used = c.used, true
	c.writes++
	WriteRequest(c.bw, req)
	return reused, c.bw.Flush()
}

// read reads the response to req, the oldest request written on c and
// not answered yet.
func (c *Conn) read(req *Request, limit int64, reason bool) (resp *session.Response, n int64, keep, got bool, err error) {
	if _, err = c.br.Peek(1); err != nil {
		return nil, 0, false, false, err
	}
	if req.StatusOnly {
		req.status = session.Response{}
		resp = &req.status
		n, keep, err = c.readResponseInto(resp, req.Method, -1, false)
	} else {
		resp = new(session.Response)
		n, keep, err = c.readResponseInto(resp, req.Method, limit, reason)
	}
	if err != nil {
		resp = nil
	}
	return resp, n, keep && !req.Close, true, err
}

// WriteRequest writes req's head and body to bw, as the client sends
// them: HTTP/1.1, its own Host and Content-Length, the recorded fields
// Sendable lets through. The benchmark's floor client writes with it
// too, so that it sends the bytes the replay sends.
func WriteRequest(bw *bufio.Writer, req *Request) {
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.Target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.Host)
	bw.WriteString("\r\n")
	if req.Close {
		bw.WriteString("Connection: close\r\n")
	}
	listed := http1.HasConnection(req.Header)
	for _, h := range req.Header {
		if !Sendable(h) || listed && http1.Listed(req.Header, h.Name) {
			continue
		}
		bw.WriteString(h.Name)
		bw.WriteString(": ")
		bw.WriteString(h.Value)
		bw.WriteString("\r\n")
	}
	if len(req.Body) > 0 || bodyMethod(req.Method) {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(len(req.Body)))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	bw.Write(req.Body)
}

// bodyMethod reports whether an empty body is still announced with
// Content-Length: 0, as clients do for these methods.
func bodyMethod(m string) bool {
	return http1.EqualFold(m, "POST") || http1.EqualFold(m, "PUT") || http1.EqualFold(m, "PATCH")
}
