package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
	"github.com/reprise-tool/reprise/session/http2"
)

// bufSize is the read and write buffer size on each side of a connection.
const bufSize = 16 << 10

// conn relays one client connection and its upstream connection. The
// request side (client to upstream) runs in serve's goroutine, the
// response side (upstream to client) in its own; they meet through
// pending, which carries each request to the response that answers it, so
// pipelined requests are matched in order.
type conn struct {
	p      *Proxy
	id     uint64
	client net.Conn
	cr     *bufio.Reader
	cw     *bufio.Writer

	upMu sync.Mutex // guards up between the request side and close
	up   net.Conn   // set once by the request side before the response side starts
	ur   *bufio.Reader
	uw   *bufio.Writer

	pending  chan *exchange
	inflight atomic.Int32 // exchanges begun and not yet finished on both sides
	index    int

	closeOnce sync.Once

	lifeMu sync.Mutex
	life   connLife
}

// exchange is one request/response being relayed. The request side fills
// req, the response side resp; whichever finishes second emits it.
type exchange struct {
	x        session.Exchange
	upgrade  bool      // the request asked to switch protocols (Upgrade or CONNECT)
	decided  chan bool // response side -> request side: true to tunnel
	halves   atomic.Int32
	expect   bool        // the request carried Expect: 100-continue
	answered atomic.Bool // a final response was relayed whole
	reqFlags session.Flags
	reqWarn  []string
	resFlags session.Flags
	resWarn  []string
	// An upgrade request's: reqDone is closed when the request side is
	// done with x.Request; h2 is set before decided says to tunnel when
	// the upgrade was to h2c.
	reqDone chan struct{}
	h2      *h2relay
}

func (p *Proxy) newConn(c net.Conn) *conn {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if p.opts.listenTLS != nil {
		c = tls.Server(c, p.opts.listenTLS) // the handshake runs in serve
	}
	cn := &conn{
		p: p, id: p.nextConn.Add(1), client: c,
		cr:      bufio.NewReaderSize(countReader{c, &p.bytesUp}, bufSize),
		cw:      bufio.NewWriterSize(c, bufSize),
		pending: make(chan *exchange, 64),
		life:    connLife{opened: time.Now().UnixNano()},
	}
	p.conns.Add(1)
	p.open.Add(1)
	p.mu.Lock()
	p.live[cn] = struct{}{}
	p.mu.Unlock()
	return cn
}

// countReader counts bytes read, for the forwarded-bytes stats.
type countReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(uint64(n))
	return n, err
}

// close ends both connections; it unblocks both sides.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.client.Close()
		if up := c.upConn(); up != nil {
			up.Close()
		}
	})
}

func (c *conn) upConn() net.Conn {
	c.upMu.Lock()
	defer c.upMu.Unlock()
	return c.up
}

func (c *conn) setUp(up net.Conn) {
	c.upMu.Lock()
	c.up = up
	c.upMu.Unlock()
	c.ur = bufio.NewReaderSize(countReader{up, &c.p.bytesDown}, bufSize)
	c.uw = bufio.NewWriterSize(up, bufSize)
}

// finish records one half done and emits the exchange after the second.
func (c *conn) finish(e *exchange) {
	if e.halves.Add(1) != 2 {
		return
	}
	c.inflight.Add(-1)
	e.x.Flags |= e.reqFlags | e.resFlags
	e.x.Warnings = append(append(e.x.Warnings, e.reqWarn...), e.resWarn...)
	c.emit(&e.x)
}

// serve is the request side: it reads each request from the client,
// dials the upstream at the first, and relays the requests to it.
func (c *conn) serve() {
	defer func() {
		c.close()
		c.record()
		c.p.open.Add(-1)
		c.p.mu.Lock()
		delete(c.p.live, c)
		c.p.mu.Unlock()
	}()
	if !c.handshake() {
		return
	}
	if tc, ok := c.client.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
		c.serveH2(session.ProtoH2)
		return
	}
	respDone := make(chan struct{})
	started := false
	defer func() {
		close(c.pending)
		if started {
			<-respDone
		}
	}()
	var buf []byte
	for {
		if err := waitData(c.cr, nopFlusher{c.uw}); err != nil {
			c.ended(session.PartyClient, err)
			c.endRequests(err)
			return
		}
		if !started && startsPreface(c.cr) {
			c.serveH2(c.h2Proto())
			return
		}
		if !started {
			// Bytes that cannot start an HTTP/1.x request (a TLS
			// ClientHello, a binary protocol) may never contain the
			// newline a head waits for: relay them at once.
			if b, _ := c.cr.Peek(1); !startsRequest(b[0]) {
				first, _ := c.cr.Peek(c.cr.Buffered())
				c.rawTunnel(nil, kindOf(first))
				return
			}
		}
		var e *exchange
		var body http1.Body
		e, body, buf = c.readRequest(buf[:0], started)
		if e == nil {
			return
		}
		if !started {
			c.p.countProto(session.ProtoHTTP1)
			up, err := c.p.dial()
			if err != nil {
				c.badGateway(e, body, err)
				return
			}
			c.setUp(up)
			started = true
			go func() {
				defer close(respDone)
				c.relayResponses()
			}()
		}
		e.x.Conn.Server = addrPort(c.up.RemoteAddr())
		c.pending <- e
		if !c.relayRequest(e, buf, body) {
			return
		}
	}
}

// readRequest reads and parses a request head into buf and returns its
// exchange and body framing; a nil exchange means the connection is done
// with (ended, given up on or tunnelled) and serve returns.
func (c *conn) readRequest(buf []byte, started bool) (*exchange, http1.Body, []byte) {
	start := time.Now().UnixNano()
	c.inflight.Add(1)
	buf, err := readHead(c.cr, nopFlusher{c.uw}, buf)
	if err != nil {
		c.inflight.Add(-1)
		switch {
		case errors.Is(err, errHeadTooLarge):
			c.giveUp(buf, "malformed", started)
		case !started && len(buf) > 0:
			c.rawTunnel(buf, kindOf(buf))
		default:
			if started {
				c.uw.Write(buf) // a partial head: the upstream sees it as it would have
			}
			c.endRequests(err)
		}
		return nil, http1.Body{}, buf
	}
	h, perr := parseHead(buf)
	var method, target, proto string
	if perr == nil {
		var ok bool
		if method, target, proto, ok = http1.ParseRequestLine(h.start); !ok {
			perr = fmt.Errorf("not an HTTP/1.x request line: %q", clip(h.start))
		}
	}
	var body http1.Body
	if perr == nil {
		h.f.HTTP10 = proto == "HTTP/1.0"
		body, perr = h.f.RequestBody()
	}
	if perr != nil {
		c.inflight.Add(-1)
		c.giveUp(buf, kindOf(buf), started)
		return nil, body, buf
	}
	e := &exchange{}
	e.x.Conn.ID = c.id
	e.x.Conn.Client = addrPort(c.client.RemoteAddr())
	e.x.Index = c.index
	c.index++
	e.x.Request = session.Request{Method: method, Target: target, Proto: proto, Header: h.fields}
	e.x.Timing.RequestStart = start
	e.reqWarn = h.f.Warnings(h.warns)
	e.expect = strings.EqualFold(h.fields.Get("Expect"), "100-continue")
	e.upgrade = method == "CONNECT" || h.f.UpgradeConn && h.f.Upgrade
	if e.upgrade {
		e.decided = make(chan bool, 1)
		e.reqDone = make(chan struct{})
	}
	return e, body, buf
}

// relayRequest writes a request's head and relays its body upstream,
// then hands an upgrade request's connection to a tunnel (or to the
// HTTP/2 relay after an h2c upgrade) if the response side says so. It
// reports whether serve goes on to the next request.
func (c *conn) relayRequest(e *exchange, buf []byte, fr http1.Body) bool {
	ok := c.sendRequest(e, buf, fr)
	if e.upgrade {
		close(e.reqDone)
	}
	if !ok {
		return false
	}
	c.finish(e)
	if !e.upgrade {
		return true
	}
	switch tunnel := <-e.decided; {
	case !tunnel:
		return true
	case e.h2 != nil:
		e.h2.relay(http2.FromClient, c.up, c.cr, c.uw)
	default:
		c.pipe(c.up, c.cr, c.uw)
	}
	return false
}

// sendRequest writes a request's head and relays its body upstream,
// flushing an upgrade request's so its answer can come. It reports
// whether the request went whole; if not, it was recorded as cut short.
func (c *conn) sendRequest(e *exchange, buf []byte, fr http1.Body) bool {
	if _, err := c.uw.Write(buf); err != nil {
		c.requestFailed(e, err)
		return false
	}
	rec := &body{max: c.p.opts.maxBody}
	err := relayBody(c.cr, c.uw, fr, rec)
	e.x.Request.Body, e.x.Request.BodySize = rec.b, rec.size
	if rec.truncated {
		e.reqFlags |= session.FlagRequestTruncated
	}
	if err != nil {
		c.requestFailed(e, err)
		return false
	}
	e.x.Timing.RequestEnd = time.Now().UnixNano()
	if e.upgrade {
		if err := c.uw.Flush(); err != nil {
			c.requestFailed(e, err)
			return false
		}
	}
	return true
}

// nopFlusher adapts a writer that may be nil (before the upstream is
// dialled) to flusher.
type nopFlusher struct{ w *bufio.Writer }

func (f nopFlusher) Write(b []byte) (int, error) { return f.w.Write(b) }
func (f nopFlusher) Flush() error {
	if f.w == nil {
		return nil
	}
	return f.w.Flush()
}

// endRequests handles the client side ending between requests: a clean
// EOF is passed on to the upstream as a half-close so responses still in
// flight are relayed; anything else ends the connection.
func (c *conn) endRequests(err error) {
	if c.up == nil {
		return // nothing dialled; serve closes the client
	}
	c.uw.Flush()
	if isEOF(err) && closeWrite(c.up) {
		return
	}
	c.close()
}

// giveUp stops parsing the client's bytes (they are not HTTP/1.x, or a
// head is too large) and relays the rest of the connection untouched.
func (c *conn) giveUp(buf []byte, kind string, started bool) {
	if !started {
		c.rawTunnel(buf, kind)
		return
	}
	c.p.countUnsupported(kind)
	if _, err := c.uw.Write(buf); err == nil {
		c.pipe(c.up, c.cr, c.uw)
	}
}

// requestFailed records a request cut short (the client went away or the
// upstream stopped reading) and ends the connection.
func (c *conn) requestFailed(e *exchange, err error) {
	if e.expect && e.answered.Load() && isEOF(err) && e.x.Request.BodySize == 0 {
		// The upstream answered without asking for the body (417, 401,
		// a redirect) and the client rightly never sent it.
		e.reqWarn = append(e.reqWarn, "no request body sent: the upstream answered the Expect: 100-continue request before asking for it")
	} else {
		e.reqFlags |= session.FlagRequestGap
		e.reqWarn = append(e.reqWarn, "request not relayed whole: "+errText(err))
	}
	e.x.Timing.RequestEnd = time.Now().UnixNano()
	c.finish(e)
	c.close()
}

// badGateway answers a request the proxy could not forward because the
// upstream was unreachable, and records it with the reason.
func (c *conn) badGateway(e *exchange, fr http1.Body, derr error) {
	c.p.errs.Add(1)
	msg := fmt.Sprintf("reprise proxy: upstream %s unreachable: %v\n", c.p.addr, derr)
	// Read the request body (bounded in time) so the client is not reset
	// before it reads the answer.
	c.client.SetReadDeadline(time.Now().Add(2 * time.Second))
	rec := &body{max: c.p.opts.maxBody}
	err := relayBody(c.cr, bufio.NewWriter(io.Discard), fr, rec)
	e.x.Request.Body, e.x.Request.BodySize = rec.b, rec.size
	if rec.truncated {
		e.x.Flags |= session.FlagRequestTruncated
	}
	if err != nil {
		e.x.Flags |= session.FlagRequestGap
	}
	e.x.Timing.RequestEnd = time.Now().UnixNano()
	e.x.Timing.ResponseStart = e.x.Timing.RequestEnd
	hdr := session.Headers{
		{Name: "Content-Type", Value: "text/plain; charset=utf-8"},
		{Name: "Content-Length", Value: strconv.Itoa(len(msg))},
		{Name: "Connection", Value: "close"},
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 502 Bad Gateway\r\n")
	for _, f := range hdr {
		b.WriteString(f.Name + ": " + f.Value + "\r\n")
	}
	b.WriteString("\r\n" + msg)
	c.client.Write(b.Bytes())
	e.x.Timing.ResponseEnd = time.Now().UnixNano()
	e.x.Response = session.Response{Proto: "HTTP/1.1", Status: 502, Reason: "Bad Gateway", Header: hdr, Body: []byte(msg), BodySize: int64(len(msg))}
	if ap, err := netip.ParseAddrPort(c.p.addr); err == nil {
		e.x.Conn.Server = ap
	}
	e.x.Warnings = append(e.x.Warnings, e.reqWarn...)
	e.x.Warnings = append(e.x.Warnings, "upstream unreachable, the proxy answered 502: "+errText(derr))
	c.emit(&e.x)
	closeWrite(c.client)
	c.inflight.Add(-1)
}

// relayResponses is the response side: it reads each response from the
// upstream, matches it to the oldest pending request, and relays it.
func (c *conn) relayResponses() {
	defer func() {
		c.cw.Flush()
		// The upstream is done: let the client read what was sent, then
		// end the connection. Requests still pending get no response.
		closeWrite(c.client)
		c.client.SetReadDeadline(time.Now().Add(time.Second))
		for e := range c.pending {
			c.noResponse(e, "the upstream closed the connection before responding")
		}
	}()
	var buf []byte
	for {
		if err := waitData(c.ur, c.cw); err != nil {
			c.ended(session.PartyServer, err)
			return
		}
		start := time.Now().UnixNano()
		var err error
		buf, err = readHead(c.ur, c.cw, buf[:0])
		if err != nil {
			c.cw.Write(buf)
			c.responseBroken(err)
			return
		}
		h, perr := parseHead(buf)
		var proto, reason string
		status := 0
		if perr == nil {
			var ok bool
			if proto, status, reason, ok = http1.ParseStatusLine(h.start); !ok {
				perr = fmt.Errorf("malformed status line %q", clip(h.start))
			}
		}
		if status >= 100 && status < 200 && status != 101 {
			// Interim response (100 Continue, 103 Early Hints): relay now.
			if _, err := c.cw.Write(buf); err != nil || c.cw.Flush() != nil {
				return
			}
			continue
		}
		e, ok := <-c.pending
		if !ok {
			c.cw.Write(buf)
			c.responseBroken(errors.New("response without a request"))
			return
		}
		e.x.Response = session.Response{Proto: proto, Status: status, Reason: reason, Header: h.fields}
		e.x.Timing.ResponseStart = start
		e.resWarn = h.warns
		if _, err := c.cw.Write(buf); err != nil {
			c.noResponse(e, "client went away: "+errText(err))
			return
		}
		h.f.HTTP10 = proto == "HTTP/1.0"
		b, tunnel, ferr := c.responseFraming(e, status, &h.f)
		if ferr != nil {
			e.resWarn = append(e.resWarn, ferr.Error())
		}
		e.resWarn = h.f.Warnings(e.resWarn)
		if tunnel && status == 101 && isH2CUpgrade(h.fields) {
			c.upgradeH2(e)
			return
		}
		if tunnel {
			kind := "upgrade"
			if e.x.Request.Method == "CONNECT" {
				kind = "connect"
			} else if strings.EqualFold(h.fields.Get("Upgrade"), "websocket") {
				kind = "websocket"
			}
			c.p.countUnsupported(kind)
			e.decided <- true // the tunnel stays busy until it ends or the grace runs out
			c.pipe(c.client, c.ur, c.cw)
			return
		}
		if e.upgrade {
			e.decided <- false
		}
		rec := &body{max: c.p.opts.maxBody}
		err = relayBody(c.ur, c.cw, b, rec)
		e.x.Response.Body, e.x.Response.BodySize = rec.b, rec.size
		if rec.truncated {
			e.resFlags |= session.FlagResponseTruncated
		}
		if err != nil {
			e.resFlags |= session.FlagResponseGap
			e.resWarn = append(e.resWarn, "response not relayed whole: "+errText(err))
		}
		if err == nil {
			e.answered.Store(true) // before the flush that lets the client see the end
			if c.ur.Buffered() == 0 {
				err = c.cw.Flush()
			}
		}
		e.x.Timing.ResponseEnd = time.Now().UnixNano()
		c.finish(e)
		if err == nil && b.Kind == http1.CloseBody {
			c.ended(session.PartyServer, io.EOF) // the body ended with the upstream's close
		}
		if err != nil || b.Kind == http1.CloseBody {
			return
		}
	}
}

// responseFraming decides how the response body is delimited, which
// depends on the request (HEAD, CONNECT) as well as the status: tunnel
// after a switch of protocols or a successful CONNECT, else http1's
// answer, or the close when the length is bad.
func (c *conn) responseFraming(e *exchange, status int, f *http1.Framing) (http1.Body, bool, error) {
	switch {
	case status == 101 && e.upgrade:
		return http1.Body{}, true, nil
	case e.x.Request.Method == "CONNECT" && status >= 200 && status < 300:
		return http1.Body{}, true, nil
	}
	b, err := f.ResponseBody(e.x.Request.Method, status)
	if err != nil {
		return http1.Body{Kind: http1.CloseBody}, false, err
	}
	return b, false, nil
}

// responseBroken relays whatever the upstream sends after a response head
// the proxy cannot parse, so the client still sees it, and counts it.
func (c *conn) responseBroken(err error) {
	c.p.countUnsupported("malformed")
	c.cw.Flush()
	io.Copy(c.client, c.ur)
}

func (c *conn) noResponse(e *exchange, why string) {
	e.resFlags |= session.FlagNoResponse
	e.resWarn = append(e.resWarn, why)
	if e.upgrade && e.decided != nil {
		close(e.decided)
	}
	c.finish(e)
}

// rawTunnel relays a connection whose first bytes are not HTTP/1.x
// (HTTP/2 prior knowledge, TLS, anything else) byte for byte and records
// nothing of it, counting it as unsupported.
func (c *conn) rawTunnel(first []byte, kind string) {
	c.p.countUnsupported(kind)
	up, err := c.p.dial()
	if err != nil {
		c.p.errs.Add(1)
		return
	}
	c.setUp(up)
	if _, err := c.uw.Write(first); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.pipe(c.client, c.ur, c.cw)
	}()
	c.pipe(up, c.cr, c.uw)
	<-done
}

// pipe copies r (with what it has buffered) to dst until r ends, then
// half-closes dst so the other side sees the end.
func (c *conn) pipe(dst net.Conn, r *bufio.Reader, w *bufio.Writer) {
	if err := w.Flush(); err == nil {
		io.Copy(dst, r)
	}
	if !closeWrite(dst) {
		dst.Close()
	}
}

// startsRequest reports whether b can begin a request: a method token
// (RFC 9110 tchar) or the empty lines a client may send before one.
func startsRequest(b byte) bool {
	return b == '\r' || b == '\n' || http1.IsTchar(b)
}

// kindOf names the protocol of bytes that are not HTTP/1.x.
func kindOf(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("PRI * HTTP/2.0")):
		return "http2"
	case len(b) > 2 && b[0] == 0x16 && b[1] == 0x03:
		return "tls"
	}
	return "non-http"
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func errText(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed mid-message"
	}
	return err.Error()
}
