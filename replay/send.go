package replay

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/session"
)

func (r *Replayer) newClient() *http.Client {
	dialer := &net.Dialer{Timeout: r.o.connectTimeout, KeepAlive: 30 * time.Second}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	tr := &http.Transport{
		Proxy:                 nil, // a replay goes where it is told, not through the environment's proxy
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: r.o.insecure}, //nolint:gosec // opt-in --insecure
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

// hopHeaders are not forwarded: they describe the recorded connection, or
// are recomputed for this one.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Transfer-Encoding": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Content-Length": true, "Host": true, "Expect": true,
}

// build makes the request to send from the (substituted) recorded one:
// the target's base path before the recorded request-target (an
// absolute-form target loses its scheme and host), the recorded header
// fields less the hop-by-hop ones, and Host from the target unless
// --keep-host.
func (r *Replayer) build(wr *wireRequest, req *session.Request, ex *session.Exchange) error {
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
	*wr = wireRequest{method: req.Method, target: target, host: r.target.Host, body: req.Body}
	if base := r.target.EscapedPath(); base != "" {
		wr.target = base + target
	}
	if r.o.keepHost {
		if h := ex.Request.Header.Get("Host"); h != "" && !strings.ContainsAny(h, "\r\n") {
			wr.host = h
		}
	}
	// The recorded fields, which the writers filter with sendable as
	// they write: a filtered copy per request cost an allocation.
	wr.header = req.Header
	return nil
}

// sendable reports whether a recorded header field goes on the wire: not
// a hop-by-hop field, nor one that would break the request's framing.
func sendable(h session.Header) bool {
	return !isHopHeader(h.Name) && h.Name != "" &&
		!strings.ContainsAny(h.Name, " :\r\n\t") && !strings.ContainsAny(h.Value, "\r\n")
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
	if len(wr.body) > 0 {
		body = bytes.NewReader(wr.body)
	}
	u := *r.target
	u.Path, u.RawPath = "", ""
	hreq, err := http.NewRequestWithContext(rctx, wr.method, u.String()+wr.target, body)
	if err != nil {
		return nil, 0, err
	}
	hreq.Host = wr.host
	for _, h := range wr.header {
		if !sendable(h) {
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
