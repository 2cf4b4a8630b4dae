package replay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
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
// every connection at once (the run's context ended).
type wireClient struct {
	addr       string      // host:port to dial
	tlsConfig  *tls.Config // nil for http
	dialer     *net.Dialer
	handshake  time.Duration
	timeout    time.Duration
	idle       chan *wireConn
	mu         sync.Mutex
	active     map[*wireConn]struct{}
	closed     bool
	bufSize    int
	readLimit  int64
	headerHost string
}

type wireConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func newWireClient(addr string, tlsConfig *tls.Config, connectTimeout, timeout time.Duration, maxIdle int) *wireClient {
	return &wireClient{
		addr:      addr,
		tlsConfig: tlsConfig,
		dialer:    &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second},
		handshake: connectTimeout,
		timeout:   timeout,
		idle:      make(chan *wireConn, maxIdle),
		active:    make(map[*wireConn]struct{}),
		bufSize:   16 << 10,
		readLimit: maxLearnBody,
	}
}

// errClientClosed is returned once the run's context ended.
var errClientClosed = errors.New("replay stopped: connection closed")

func (w *wireClient) get(ctx context.Context) (*wireConn, bool, error) {
	select {
	case c := <-w.idle:
		return c, true, nil
	default:
	}
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
	return &wireConn{c: nc, br: bufio.NewReaderSize(nc, w.bufSize), bw: bufio.NewWriterSize(nc, w.bufSize)}, false, nil
}

func (w *wireClient) track(c *wireConn, on bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if on {
		if w.closed {
			return false
		}
		w.active[c] = struct{}{}
	} else {
		delete(w.active, c)
	}
	return true
}

func (w *wireClient) put(c *wireConn) {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		c.c.Close()
		return
	}
	select {
	case w.idle <- c:
	default:
		c.c.Close()
	}
}

// closeAll closes every connection, in use or idle; later requests fail.
func (w *wireClient) closeAll() {
	w.mu.Lock()
	w.closed = true
	for c := range w.active {
		c.c.Close()
	}
	w.mu.Unlock()
	for {
		select {
		case c := <-w.idle:
			c.c.Close()
		default:
			return
		}
	}
}

// wireRequest is what goes on the wire.
type wireRequest struct {
	method, target, host string
	header               session.Headers // hop-by-hop fields already removed
	body                 []byte
}

// do sends req and reads the whole response. A request on a reused
// connection that the server had closed (an idle keep-alive timeout) is
// retried once on a new connection when no response byte had arrived.
func (w *wireClient) do(ctx context.Context, req *wireRequest) (*session.Response, int64, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := w.get(ctx)
		if err != nil {
			return nil, 0, err
		}
		if !w.track(c, true) {
			c.c.Close()
			return nil, 0, errClientClosed
		}
		resp, n, keep, got, err := w.exchange(c, req)
		w.track(c, false)
		if err == nil {
			if keep {
				w.put(c)
			} else {
				c.c.Close()
			}
			return resp, n, nil
		}
		c.c.Close()
		if reused && !got && attempt == 0 && retryable(err) {
			continue
		}
		return nil, n, err
	}
}

func retryable(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errKind(err) == ErrKindReset
}

// exchange writes req on c and reads the response. got reports whether
// any response byte arrived.
func (w *wireClient) exchange(c *wireConn, req *wireRequest) (resp *session.Response, n int64, keep, got bool, err error) {
	c.c.SetDeadline(time.Now().Add(w.timeout))
	bw := c.bw
	bw.WriteString(req.method)
	bw.WriteByte(' ')
	bw.WriteString(req.target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.host)
	bw.WriteString("\r\n")
	for _, h := range req.header {
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
		return nil, 0, false, false, err
	}
	if _, err = c.br.Peek(1); err != nil {
		return nil, 0, false, false, err
	}
	hr := &http.Request{Method: req.method}
	var hresp *http.Response
	for {
		hresp, err = http.ReadResponse(c.br, hr)
		if err != nil {
			return nil, 0, false, true, err
		}
		if hresp.StatusCode >= 200 || hresp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		hresp.Body.Close() // an interim 1xx: the final response follows
	}
	body, n, err := readBody(hresp.Body, hresp.ContentLength, w.readLimit)
	hresp.Body.Close()
	if err != nil {
		return nil, n, false, true, err
	}
	resp = &session.Response{Proto: hresp.Proto, Status: hresp.StatusCode, Body: body, BodySize: n}
	for name, vals := range hresp.Header {
		for _, v := range vals {
			resp.Header = append(resp.Header, session.Header{Name: name, Value: v})
		}
	}
	keep = !hresp.Close && hresp.ContentLength >= 0 || (!hresp.Close && len(hresp.TransferEncoding) > 0)
	if hresp.StatusCode == http.StatusSwitchingProtocols {
		keep = false
	}
	return resp, n, keep, true, nil
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

// readBody reads a body whole, keeping the first limit bytes. size is
// the announced length, -1 when unknown.
func readBody(r io.Reader, size, limit int64) ([]byte, int64, error) {
	if size == 0 {
		return nil, 0, nil
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
