package replay

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
	"github.com/reprise-tool/reprise/session/http2"
)

func (r *Replayer) newClient() *http.Client {
	dialer := &net.Dialer{Timeout: r.o.connectTimeout, KeepAlive: 30 * time.Second}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	tr := &http.Transport{
		Proxy:                 nil, // a replay goes where it is told, not through the environment's proxy
		DialContext:           dialer.DialContext,
		TLSClientConfig:       r.o.tlsConfig(""),
		TLSHandshakeTimeout:   r.o.connectTimeout,
		MaxIdleConns:          r.o.maxInFlight,
		MaxIdleConnsPerHost:   r.o.maxInFlight,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: r.o.timeout,
		DisableCompression:    true, // send Accept-Encoding as recorded, and take bodies as they come
		Protocols:             protos,
	}
	c := &http.Client{Transport: tr}
	if !r.o.followRedirect {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// Error kinds, as counted in Report.Errors: the wire client's (see
// wire.Kind).
const (
	ErrKindConnect  = wire.KindConnect  // the connection could not be made (refused, unreachable, DNS)
	ErrKindTimeout  = wire.KindTimeout  // no answer in time (connect, headers or body)
	ErrKindReset    = wire.KindReset    // the peer reset or closed the connection mid-exchange
	ErrKindCanceled = wire.KindCanceled // the replay was stopped while the request was in flight
	ErrKindOther    = wire.KindOther
	// HTTP/2's: the server reset the stream, went away before it was
	// done (and it could not be sent again), or broke the protocol. A
	// gRPC response whose grpc-status is not OK counts as
	// "grpc-status-N", N its code (see wire.GRPCError).
	ErrKindStreamReset = wire.KindStreamReset
	ErrKindGoAway      = wire.KindGoAway
	ErrKindProtocol    = wire.KindProtocol
)

// errClientClosed is returned once the run's context ended.
var errClientClosed = wire.ErrClosed

// errKind classifies a transport error.
func errKind(err error) string { return wire.Kind(err) }

// The engine's names for the one sender, replay/wire.
type (
	wireRequest = wire.Request
	wireConn    = wire.Conn
	// wireClient is the engine's wire.Client; a worker holds a
	// connection from one request to its next (see doOn). Its h2 sends
	// the HTTP/2 streams (see useH2); it opens no connection unless one
	// is replayed.
	wireClient struct {
		*wire.Client
		h2 *wire.H2Client
	}
)

func newWireClient(addr string, tlsConfig *tls.Config, connectTimeout, timeout time.Duration, maxIdle int) *wireClient {
	cfg := wire.Config{Addr: addr, TLS: tlsConfig, ConnectTimeout: connectTimeout,
		Timeout: timeout, MaxIdle: maxIdle, BodyLimit: maxLearnBody}
	w := &wireClient{Client: wire.New(cfg)}
	cfg.TLS = wire.H2TLSConfig(tlsConfig)
	w.h2 = wire.NewH2(cfg)
	return w
}

func (w *wireClient) doOn(ctx context.Context, req *wireRequest, held **wireConn) (*session.Response, int64, error) {
	return w.DoOn(ctx, req, held)
}

func (w *wireClient) put(c *wireConn) { w.Put(c) }
func (w *wireClient) closeAll() {
	w.CloseAll()
	w.h2.CloseAll()
}

// build makes the request to send from the (substituted) recorded one:
// the target's base path before the recorded request-target (an
// absolute-form target loses its scheme and host), the recorded header
// fields less the hop-by-hop ones, and Host from the target unless
// --keep-host.
func (r *Replayer) build(wr *wireRequest, req *session.Request, ex *session.Exchange) error {
	if !r.useH2(ex) {
		req = http2.AsHTTP1(req) // an HTTP/2 request's pseudo-header fields are no header lines
	}
	target := req.Target
	if !strings.HasPrefix(target, "/") {
		i := strings.Index(target, "://")
		if i < 0 {
			return fmt.Errorf("request-target %q: want an origin-form path such as /api", target)
		}
		// absolute-form (a proxy request): keep only the path and query
		rest := target[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			target = rest[j:]
		} else {
			target = "/"
		}
	}
	if strings.ContainsAny(target, " \r\n\t") {
		return fmt.Errorf("request-target %q holds a space or a line break", target)
	}
	if strings.ContainsAny(req.Method, " \r\n\t/:") || req.Method == "" {
		return fmt.Errorf("method %q is not a token", req.Method)
	}
	*wr = wireRequest{Method: req.Method, Target: target, Host: r.target.Host, Body: req.Body}
	if base := r.target.EscapedPath(); base != "" {
		wr.Target = base + target
	}
	if r.o.keepHost {
		if h := cmp.Or(ex.Request.Header.Get("Host"), ex.Request.Header.Get(":authority")); h != "" && !strings.ContainsAny(h, "\r\n") {
			wr.Host = h
		}
	}
	// The recorded fields, which the writers filter with wire.Sendable
	// as they write: a filtered copy per request cost an allocation.
	wr.Header = req.Header
	return nil
}

// send puts the request on the wire and reads the whole response.
func (r *Replayer) send(ctx context.Context, wr *wireRequest, w *worker) (*session.Response, int64, error) {
	if r.wire != nil {
		return r.wire.doOn(ctx, wr, &w.conn)
	}
	// Following redirects takes net/http's client.
	rctx, cancel := context.WithTimeout(ctx, r.o.timeout)
	defer cancel()
	var body io.Reader = http.NoBody
	if len(wr.Body) > 0 {
		body = bytes.NewReader(wr.Body)
	}
	u := *r.target
	u.Path, u.RawPath = "", ""
	hreq, err := http.NewRequestWithContext(rctx, wr.Method, u.String()+wr.Target, body)
	if err != nil {
		return nil, 0, err
	}
	hreq.Host = wr.Host
	listed := http1.HasConnection(wr.Header)
	for _, h := range wr.Header {
		if !wire.Sendable(h) || listed && http1.Listed(wr.Header, h.Name) {
			continue
		}
		name := http.CanonicalHeaderKey(h.Name)
		hreq.Header[name] = append(hreq.Header[name], h.Value)
	}
	if _, ok := hreq.Header["User-Agent"]; !ok {
		hreq.Header["User-Agent"] = nil // send none rather than Go's own, as recorded
	}
	resp, err := r.client.Do(hreq)
	if err != nil {
		return nil, 0, err
	}
	return readResponse(resp)
}

// readResponse reads the live response fully, keeping the first
// maxLearnBody bytes for learning.
func readResponse(resp *http.Response) (*session.Response, int64, error) {
	defer resp.Body.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(resp.Body, maxLearnBody))
	if err == nil && n == maxLearnBody {
		var m int64
		m, err = io.Copy(io.Discard, resp.Body)
		n += m
	}
	if err != nil {
		return nil, n, err
	}
	live := &session.Response{Proto: resp.Proto, Status: resp.StatusCode, Body: buf.Bytes(), BodySize: n}
	for name, vals := range resp.Header {
		for _, v := range vals {
			live.Header = append(live.Header, session.Header{Name: name, Value: v})
		}
	}
	return live, n, nil
}
