package replay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// wireClient is a small HTTP/1.1 client that writes each request as
// recorded: header names in their recorded case and order, repeated fields
// as they were. net/http's client canonicalises names and sorts them, and
// hands every exchange through two goroutines per connection; this one
// uses the calling goroutine and one buffered reader and writer per
// connection, which is what lets a --speed max replay keep up with wrk.
//
// Connections are kept alive in a pool of at most maxIdle; a request takes
// an idle one or dials. Deadlines bound each exchange. closeAll aborts
// every connection at once (the run's context ended). Taking and giving
// back a connection is one short critical section each: the set of open
// connections changes only when one is dialled or closed.
type wireClient struct {
	addr       string      // host:port to dial
	tlsConfig  *tls.Config // nil for http
	dialer     *net.Dialer
	handshake  time.Duration
	timeout    time.Duration
	maxIdle    int
	bufSize    int
	readLimit  int64
	headerHost string

	mu     sync.Mutex
	idle   []*wireConn            // kept alive; the last one given back is taken first
	open   map[*wireConn]struct{} // every connection not yet closed, idle or in use
	closed bool
}

type wireConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer

	raw      []byte    // the last header block read, reused
	spans    []span    // its fields
	deadline time.Time // the connection's read and write deadline
}

func newWireClient(addr string, tlsConfig *tls.Config, connectTimeout, timeout time.Duration, maxIdle int) *wireClient {
	return &wireClient{
		addr:      addr,
		tlsConfig: tlsConfig,
		dialer:    &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second},
		handshake: connectTimeout,
		timeout:   timeout,
		maxIdle:   maxIdle,
		idle:      make([]*wireConn, 0, maxIdle),
		open:      make(map[*wireConn]struct{}),
		bufSize:   16 << 10,
		readLimit: maxLearnBody,
	}
}

// errClientClosed is returned once the run's context ended.
var errClientClosed = errors.New("replay stopped: connection closed")

// get takes an idle connection (reused reports that) or dials one.
func (w *wireClient) get(ctx context.Context) (c *wireConn, reused bool, err error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, false, errClientClosed
	}
	if n := len(w.idle); n > 0 {
		c = w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		return c, true, nil
	}
	w.mu.Unlock()
	nc, err := w.dialer.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		return nil, false, err
	}
	if w.tlsConfig != nil {
		tc := tls.Client(nc, w.tlsConfig)
		hctx, cancel := context.WithTimeout(ctx, w.handshake)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	c = &wireConn{c: nc, br: bufio.NewReaderSize(nc, w.bufSize), bw: bufio.NewWriterSize(nc, w.bufSize)}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		nc.Close()
		return nil, false, errClientClosed
	}
	w.open[c] = struct{}{}
	return c, false, nil
}

// put gives c back to the pool, or closes it when the pool is full or
// closed.
func (w *wireClient) put(c *wireConn) {
	w.mu.Lock()
	if !w.closed && len(w.idle) < w.maxIdle {
		w.idle = append(w.idle, c)
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	w.discard(c)
}

// discard closes c and forgets it.
func (w *wireClient) discard(c *wireConn) {
	w.mu.Lock()
	delete(w.open, c)
	w.mu.Unlock()
	c.c.Close()
}

// closeAll closes every connection, in use or idle; later requests fail.
func (w *wireClient) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for c := range w.open {
		c.c.Close()
	}
	clear(w.open)
	clear(w.idle)
	w.idle = w.idle[:0]
}

// wireRequest is what goes on the wire.
type wireRequest struct {
	method, target, host string
	header               session.Headers // as recorded: writers leave out what sendable refuses
	body                 []byte

	// statusOnly asks for the response's status and size alone, for a
	// request whose response nothing learns from or compares: its header
	// fields and body are read past, not kept, and the response is
	// status, not a new one. Most requests of a replay are such, and
	// keeping what nobody reads was a third of a request's allocation.
	statusOnly bool
	status     session.Response
}

// doOn sends req and reads the whole response, on *held when it is a
// connection, which the caller kept from its last request, or else on one
// from the pool; the connection, if it can carry another exchange, is
// left in *held for the caller to use again or put back.
//
// A request on a reused connection that the server had closed (an idle
// keep-alive timeout) is retried once on a new connection when no response byte had arrived and
// either the request could not be written or sending it twice does no
// harm (see idempotent): a POST the server may have acted on before it
// closed is reported, not sent again, as net/http's client does. So that
// such a request seldom meets a closed connection, one taken from the
// pool for it is first checked (see alive).
func (w *wireClient) doOn(ctx context.Context, req *wireRequest, held **wireConn) (*session.Response, int64, error) {
	for attempt := 0; ; attempt++ {
		c, reused := *held, true
		*held = nil
		if c == nil {
			var err error
			if c, reused, err = w.get(ctx); err != nil {
				return nil, 0, err
			}
			for reused && !req.idempotent() && !c.alive() {
				w.discard(c)
				if c, reused, err = w.get(ctx); err != nil {
					return nil, 0, err
				}
			}
		}
		resp, n, keep, got, wrote, err := w.exchange(c, req)
		if err == nil {
			if keep {
				*held = c
			} else {
				w.discard(c)
			}
			return resp, n, nil
		}
		w.discard(c)
		if reused && !got && attempt == 0 && retryable(err) && (!wrote || req.idempotent()) {
			continue
		}
		return nil, n, err
	}
}

// idempotent reports whether sending the request twice has the effect of
// sending it once: its method is idempotent (RFC 9110, 9.2.2), or it
// carries an idempotency key, as net/http's client also takes it.
func (req *wireRequest) idempotent() bool {
	switch req.method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	for _, h := range req.header {
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
func (c *wireConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	nc := c.c
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	return !peerClosed(nc)
}

func retryable(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errKind(err) == ErrKindReset
}

// exchange writes req on c and reads the response. wrote reports whether
// the request was written whole, got whether any response byte arrived.
func (w *wireClient) exchange(c *wireConn, req *wireRequest) (resp *session.Response, n int64, keep, got, wrote bool, err error) {
	// Moving a deadline updates a runtime timer, a fiftieth of a
	// request's cost at --speed max; it is moved only once it has aged
	// by 1/64 of the timeout, so each exchange is bounded by between
	// 63/64 of the timeout and the whole of it.
	if d := time.Now().Add(w.timeout); d.Sub(c.deadline) > w.timeout/64 {
		c.c.SetDeadline(d)
		c.deadline = d
	}
	bw := c.bw
	bw.WriteString(req.method)
	bw.WriteByte(' ')
	bw.WriteString(req.target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.host)
	bw.WriteString("\r\n")
	for _, h := range req.header {
		if !sendable(h) {
			continue
		}
		bw.WriteString(h.Name)
		bw.WriteString(": ")
		bw.WriteString(h.Value)
		bw.WriteString("\r\n")
	}
	if len(req.body) > 0 || bodyMethod(req.method) {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(len(req.body)))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	bw.Write(req.body)
	if err = bw.Flush(); err != nil {
		return nil, 0, false, false, false, err
	}
	if _, err = c.br.Peek(1); err != nil {
		return nil, 0, false, false, true, err
	}
	if req.statusOnly {
		req.status = session.Response{}
		resp = &req.status
		n, keep, err = c.readResponseInto(resp, req.method, -1)
	} else {
		resp = new(session.Response)
		n, keep, err = c.readResponseInto(resp, req.method, w.readLimit)
	}
	if err != nil {
		resp = nil
	}
	return resp, n, keep, true, true, err
}

// maxInterim bounds the interim (1xx) responses read before the final one.
const maxInterim = 16

// readResponseInto reads one final response to a request of the given
// method into resp, skipping interim 1xx responses, and returns the body's
// size and whether the connection can carry another exchange. It parses
// the status line and header fields in place in the reader's buffer, then
// makes one string of the whole header block that the fields' names and
// values share: net/http's ReadResponse
// builds a map, canonicalises every name and allocates each value, which
// made up a fifth of a request's cost at --speed max. The framing rules
// are net/http's: no body for HEAD, 1xx, 204 and 304; chunked wins over
// Content-Length (and is only read from HTTP/1.1); differing
// Content-Lengths are an error; a body without either runs to the close.
// The first limit bytes of the body are kept; a negative limit keeps
// neither the header fields nor the body, for a status-only read.
func (c *wireConn) readResponseInto(resp *session.Response, method string, limit int64) (int64, bool, error) {
	for interim := 0; ; interim++ {
		h, err := c.readHead(limit >= 0)
		if err != nil {
			return 0, false, err
		}
		if h.status/100 == 1 && h.status != http.StatusSwitchingProtocols {
			if interim == maxInterim {
				return 0, false, errors.New("malformed HTTP response: too many interim (1xx) responses")
			}
			continue
		}
		resp.Proto, resp.Status, resp.Header = h.proto, h.status, h.header
		noBody := method == "HEAD" || h.status == http.StatusNoContent || h.status == http.StatusNotModified ||
			h.status == http.StatusSwitchingProtocols
		keep := !h.close && h.status != http.StatusSwitchingProtocols
		var n int64
		switch {
		case noBody:
		case h.chunked:
			resp.Body, n, err = readBody(httputil.NewChunkedReader(c.br), -1, limit)
			if err == nil {
				err = c.skipTrailer()
			}
		case h.length >= 0:
			resp.Body, n, err = readBody(c.br, h.length, limit)
		default: // delimited by the close
			keep = false
			resp.Body, n, err = readBody(c.br, -1, limit)
		}
		if err != nil {
			return n, false, err
		}
		resp.BodySize = n
		return n, keep, nil
	}
}

// head is a parsed status line and header section.
type head struct {
	proto   string
	status  int
	header  session.Headers
	length  int64 // Content-Length, -1 when absent
	chunked bool
	close   bool // the connection ends after this response
}

// readHead reads a status line and its header fields. Lines are copied
// into c.raw (reused from one response to the next) and the fields' spans
// noted in c.spans; the framing is read from those bytes. With keep, one
// string conversion at the end backs every field's name and value.
func (c *wireConn) readHead(keep bool) (head, error) {
	h := head{length: -1}
	line, err := c.readLine()
	if err != nil {
		return h, err
	}
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < len("HTTP/1.1 200") || string(line[:7]) != "HTTP/1." || line[7] < '0' || line[7] > '9' ||
		line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return h, fmt.Errorf("malformed HTTP response %q", truncate(line))
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return h, fmt.Errorf("malformed HTTP status code %q", truncate(line))
		}
		h.status = h.status*10 + int(d-'0')
	}
	minor := line[7]
	switch minor {
	case '1':
		h.proto = "HTTP/1.1"
	case '0':
		h.proto = "HTTP/1.0"
	default:
		h.proto = string(line[:8])
	}
	c.raw = c.raw[:0]
	c.spans = c.spans[:0]
	for {
		line, err := c.readLine()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return h, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' { // obsolete line folding
			if len(c.spans) == 0 {
				return h, fmt.Errorf("malformed MIME header: continuation line %q", truncate(line))
			}
			if v := bytes.Trim(line, " \t"); len(v) > 0 {
				c.raw = append(c.raw, ' ')
				c.raw = append(c.raw, v...)
				c.spans[len(c.spans)-1].end = len(c.raw)
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		// Spaces in a name are let through, as net/http lets them
		// through in responses.
		if colon <= 0 {
			return h, fmt.Errorf("malformed MIME header line %q", truncate(line))
		}
		if len(c.spans) == 1000 {
			return h, errors.New("malformed HTTP response: more than 1000 header fields")
		}
		sp := span{name: len(c.raw)}
		c.raw = append(c.raw, line[:colon]...)
		sp.value = len(c.raw)
		c.raw = append(c.raw, bytes.Trim(line[colon+1:], " \t")...)
		sp.end = len(c.raw)
		c.spans = append(c.spans, sp)
	}
	if len(c.spans) == 0 {
		h.close = minor == '0'
		return h, nil
	}
	keepAlive, te := false, 0
	for _, sp := range c.spans {
		name, value := c.raw[sp.name:sp.value], c.raw[sp.value:sp.end]
		switch {
		case bytes.EqualFold(name, hdrContentLength):
			n, ok := parseLength(value)
			if !ok {
				return h, fmt.Errorf("bad Content-Length %q", value)
			}
			if h.length >= 0 && h.length != n {
				return h, fmt.Errorf("message cannot contain multiple differing Content-Lengths (%d and %d)", h.length, n)
			}
			h.length = n
		case bytes.EqualFold(name, hdrTransferEncoding):
			te++
			if !bytes.EqualFold(value, tokChunked) || te > 1 {
				return h, fmt.Errorf("unsupported transfer encoding %q", value)
			}
		case bytes.EqualFold(name, hdrConnection):
			for tok := range bytes.SplitSeq(value, []byte{','}) {
				tok = bytes.TrimSpace(tok)
				h.close = h.close || bytes.EqualFold(tok, tokClose)
				keepAlive = keepAlive || bytes.EqualFold(tok, tokKeepAlive)
			}
		}
	}
	if keep {
		block := string(c.raw)
		h.header = make(session.Headers, len(c.spans))
		for i, sp := range c.spans {
			h.header[i] = session.Header{Name: block[sp.name:sp.value], Value: block[sp.value:sp.end]}
		}
	}
	if minor == '0' {
		h.close = h.close || !keepAlive
	} else if te > 0 {
		h.chunked, h.length = true, -1
	}
	return h, nil
}

var (
	hdrContentLength    = []byte("Content-Length")
	hdrTransferEncoding = []byte("Transfer-Encoding")
	hdrConnection       = []byte("Connection")
	tokChunked          = []byte("chunked")
	tokClose            = []byte("close")
	tokKeepAlive        = []byte("keep-alive")
)

// parseLength parses a Content-Length value: decimal digits alone, as
// strconv.ParseInt takes them less a sign, within int64.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || v[0] < '0' || v[0] > '9' {
		return 0, false
	}
	if len(v) > 18 { // might pass int64: let strconv say
		n, err := strconv.ParseInt(string(v), 10, 64)
		return n, err == nil
	}
	var n int64
	for _, d := range v {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// span locates one field in wireConn.raw: name at [name:value), value at
// [value:end).
type span struct{ name, value, end int }

// readLine returns the next line without its CRLF (or LF). The slice is
// valid until the next read.
func (c *wireConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errors.New("malformed HTTP response: header line too long")
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// skipTrailer reads the trailer section after the last chunk.
func (c *wireConn) skipTrailer() error {
	for i := 0; ; i++ {
		line, err := c.readLine()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil || len(line) == 0 {
			return err
		}
		if i == 1000 {
			return errors.New("malformed HTTP response: trailer too long")
		}
	}
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// isHopHeader reports whether name, in any case, is one of hopHeaders. It
// compares in place: canonicalising a lower-case name to look it up
// allocated for every such field of every request.
func isHopHeader(name string) bool {
	var hop string
	switch len(name) {
	case 2:
		hop = "Te"
	case 4:
		hop = "Host"
	case 6:
		hop = "Expect"
	case 7:
		if strings.EqualFold(name, "Trailer") {
			return true
		}
		hop = "Upgrade"
	case 10:
		if strings.EqualFold(name, "Connection") {
			return true
		}
		hop = "Keep-Alive"
	case 14:
		hop = "Content-Length"
	case 16:
		hop = "Proxy-Connection"
	case 17:
		hop = "Transfer-Encoding"
	default:
		return false
	}
	return strings.EqualFold(name, hop)
}

// bodyMethod reports whether an empty body is still announced with
// Content-Length: 0, as clients do for these methods.
func bodyMethod(m string) bool {
	switch strings.ToUpper(m) {
	case "POST", "PUT", "PATCH":
		return true
	}
	return false
}

// readBody reads a body whole, keeping the first limit bytes (none for a
// negative limit). size is the announced length, -1 when unknown.
func readBody(r io.Reader, size, limit int64) ([]byte, int64, error) {
	if size == 0 {
		return nil, 0, nil
	}
	if limit < 0 {
		if br, ok := r.(*bufio.Reader); ok && size > 0 {
			var n int64
			for n < size {
				k, err := br.Discard(int(min(size-n, 1<<30)))
				n += int64(k)
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				if err != nil {
					return nil, n, err
				}
			}
			return nil, n, nil
		}
		if size > 0 {
			r = io.LimitReader(r, size)
		}
		n, err := io.Copy(io.Discard, r)
		if err == nil && size > 0 && n < size {
			err = io.ErrUnexpectedEOF
		}
		return nil, n, err
	}
	if size > 0 && size <= limit {
		buf := make([]byte, size)
		n, err := io.ReadFull(r, buf)
		return buf[:n], int64(n), err
	}
	var buf []byte
	chunk := make([]byte, 4096)
	var n int64
	for {
		k, err := r.Read(chunk)
		if k > 0 {
			if int64(len(buf)) < limit {
				keep := min(int64(k), limit-int64(len(buf)))
				buf = append(buf, chunk[:keep]...)
			}
			n += int64(k)
		}
		if err == io.EOF {
			return buf, n, nil
		}
		if err != nil {
			return buf, n, err
		}
	}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 16<<10) }
func newWriter(c net.Conn) *bufio.Writer { return bufio.NewWriterSize(c, 16<<10) }
