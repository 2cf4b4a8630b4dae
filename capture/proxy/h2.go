package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	xhttp2 "golang.org/x/net/http2"

	"github.com/reprise-tool/reprise/capture/httpstream"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
)

// HTTP/2 in the proxy.
//
// An HTTP/2 connection (h2c with prior knowledge, h2c after an HTTP/1.1
// Upgrade, h2 by ALPN) is relayed byte for byte to its own upstream
// connection, the way HTTP/1 connections are paired one to one: every
// frame reaches the other side as it was sent, HPACK blocks included, so
// header order, case and the peers' dynamic tables are untouched; SETTINGS,
// WINDOW_UPDATE (flow control stays end to end), PING, RST_STREAM, GOAWAY
// and trailers pass as they are; a gRPC stream's DATA frames are written
// on as soon as they are read, never buffered whole. Re-encoding through
// http2.Server and http2.Transport would reorder, lower-case and add
// header fields (and split or merge frames); a recording proxy must not
// alter what it records.
//
// Both directions are teed into a session/http2 Assembler, the parser
// packet capture uses, with the time each chunk was read: the proxy
// records exactly the exchanges a capture of the client's connection would
// give, one per stream with the same HTTP/2 and gRPC fields. A chunk is
// fed before it is written on, so the assembler always sees a request's
// frames before the answers they cause.

// h2relay is one HTTP/2 connection being relayed and assembled.
type h2relay struct {
	c     *conn
	mu    sync.Mutex // guards asm, fed from both directions
	asm   *http2.Assembler
	ended atomic.Int32 // directions finished; the second closes asm
}

// h2events passes what the assembler finds to the proxy.
type h2events struct{ c *conn }

func (e h2events) Started(*session.Exchange) {
	e.c.inflight.Add(1)
	e.c.p.streams.Add(1)
}

func (e h2events) Exchange(x *session.Exchange) {
	e.c.inflight.Add(-1)
	e.c.emit(x)
}

func (e h2events) Dropped(*session.Exchange) { e.c.inflight.Add(-1) }

func (e h2events) Undecodable(reason string) {
	e.c.p.countUnsupported(httpstream.KindUndecodableStream + reason)
}

// newH2 starts assembling the connection as proto; upgrade is an h2c
// upgrade's HTTP/1.1 exchange (its request complete, its 101 response
// read), which becomes stream 1, or nil.
func (c *conn) newH2(proto session.Protocol, upgrade *session.Exchange) *h2relay {
	info := session.Conn{ID: c.id, Client: addrPort(c.client.RemoteAddr()), Protocol: proto}
	if up := c.upConn(); up != nil {
		info.Server = addrPort(up.RemoteAddr())
	}
	if upgrade != nil {
		http2.Upgraded(upgrade)
		upgrade.Conn.Protocol = proto
		c.p.streams.Add(1)
	}
	h := &h2relay{c: c}
	h.asm = http2.New(http2.Config{Conn: info, MaxBody: c.p.opts.maxBody, Start: true, Upgrade: upgrade}, h2events{c})
	return h
}

// relayBufSize is the read size of the HTTP/2 relay: a chunk is written
// on as soon as it is read, whatever its size.
const relayBufSize = 32 << 10

// relay copies direction dir (http2.FromClient or FromServer) from r,
// with what r and w already hold, to dst until r ends, teeing every chunk
// into the assembler. When the direction ends it half-closes dst; an error
// ends the whole connection. The second direction to end closes the
// assembler, which emits the streams still open, flagged.
func (h *h2relay) relay(dir int, dst io.Writer, r *bufio.Reader, w *bufio.Writer) {
	defer func() {
		if h.ended.Add(1) == 2 {
			h.mu.Lock()
			h.asm.Close()
			h.mu.Unlock()
		}
	}()
	if err := w.Flush(); err != nil {
		h.c.close()
		return
	}
	buf := make([]byte, relayBufSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			h.feed(dir, buf[:n], time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				h.c.close()
				return
			}
		}
		if err != nil {
			by := session.PartyServer
			if dir == http2.FromClient {
				by = session.PartyClient
			}
			h.c.ended(by, err)
			if nc, ok := dst.(net.Conn); !isEOF(err) || !ok || !closeWrite(nc) {
				h.c.close()
			}
			return
		}
	}
}

func (h *h2relay) feed(dir int, p []byte, ts int64) {
	h.mu.Lock()
	h.asm.Feed(dir, p, ts)
	h.mu.Unlock()
}

// serveH2 relays a connection that speaks HTTP/2 from its first byte: the
// h2c preface on a cleartext connection, or h2 negotiated by ALPN. The
// upstream is spoken to in HTTP/2 as well: h2c to an http:// upstream, h2
// over TLS (ALPN h2) to an https:// one.
func (c *conn) serveH2(proto session.Protocol) {
	c.p.countProto(proto)
	up, err := c.p.dialH2()
	if err != nil {
		c.p.errs.Add(1)
		c.refuseH2(err)
		return
	}
	c.setUp(up)
	h := c.newH2(proto, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.relay(http2.FromServer, c.client, c.ur, c.cw)
	}()
	h.relay(http2.FromClient, up, c.cr, c.uw)
	<-done
}

// ErrUpstreamNoH2 means an https upstream did not accept h2 by ALPN, so an
// HTTP/2 client's connection cannot be relayed as it is.
var ErrUpstreamNoH2 = errors.New("the upstream did not negotiate h2 by ALPN")

// dialH2 connects to the upstream for an HTTP/2 connection: plain TCP
// (h2c) to an http:// upstream, TLS with ALPN h2 to an https:// one.
func (p *Proxy) dialH2() (net.Conn, error) {
	c, err := p.dialWith(p.tlsH2)
	if err != nil || p.tlsH2 == nil {
		return c, err
	}
	if got := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != "h2" {
		c.Close()
		return nil, fmt.Errorf("%w (it chose %q)", ErrUpstreamNoH2, got)
	}
	return c, nil
}

// refuseH2 answers an HTTP/2 client whose connection cannot be relayed
// (upstream unreachable, or without h2) with the server preface and a
// GOAWAY that processed no stream, its debug data saying why:
// HTTP_1_1_REQUIRED when the upstream lacks h2, so clients that can fall
// back do, INTERNAL_ERROR otherwise. Nothing is recorded; the connection
// counts in Stats.Errors, as a 502 does for HTTP/1.
func (c *conn) refuseH2(why error) {
	code, msg := xhttp2.ErrCodeInternal, "reprise proxy: upstream "+c.p.addr+" unreachable: "+why.Error()
	if errors.Is(why, ErrUpstreamNoH2) {
		code, msg = xhttp2.ErrCodeHTTP11Required, "reprise proxy: upstream "+c.p.addr+": "+why.Error()
	}
	var b bytes.Buffer
	fr := xhttp2.NewFramer(&b, nil)
	fr.WriteSettings()
	fr.WriteGoAway(0, code, []byte(msg[:min(len(msg), 512)]))
	c.client.Write(b.Bytes())
	// Read what the client sends (bounded in time) so it is not reset
	// before it reads the GOAWAY.
	closeWrite(c.client)
	c.client.SetReadDeadline(time.Now().Add(2 * time.Second))
	c.cr.WriteTo(io.Discard)
}

// startsPreface waits until the first bytes of the connection either
// differ from the HTTP/2 client preface or hold all of it, and reports
// which. Only a client sending the preface is kept waiting for more bytes:
// any HTTP/1 method but PRI differs by its second byte.
func startsPreface(r *bufio.Reader) bool {
	for {
		n := r.Buffered()
		b, _ := r.Peek(n)
		k := min(n, len(http2.Preface))
		if string(b[:k]) != http2.Preface[:k] {
			return false
		}
		if k == len(http2.Preface) {
			return true
		}
		if _, err := r.Peek(n + 1); err != nil {
			return false
		}
	}
}

// isH2CUpgrade reports whether a 101 response's fields switch to h2c.
func isH2CUpgrade(fields session.Headers) bool {
	return strings.EqualFold(strings.TrimSpace(fields.Get("Upgrade")), "h2c")
}

// h2Proto is the protocol an HTTP/2 connection from this client speaks:
// h2 when the proxy terminated its TLS, h2c otherwise.
func (c *conn) h2Proto() session.Protocol {
	if _, ok := c.client.(*tls.Conn); ok {
		return session.ProtoH2
	}
	return session.ProtoH2C
}

// upgradeH2 takes over after the upstream accepted an h2c upgrade with the
// 101 whose head was just written to the client: the upgrade request
// becomes stream 1 (as capture records it), both directions are relayed
// and assembled as HTTP/2, and the connection counts as h2c, not h1.
func (c *conn) upgradeH2(e *exchange) {
	<-e.reqDone
	e.x.Flags |= e.reqFlags | e.resFlags
	e.x.Warnings = append(append(e.x.Warnings, e.reqWarn...), e.resWarn...)
	proto := c.h2Proto()
	c.p.upgradedProto(proto)
	h := c.newH2(proto, &e.x)
	e.h2 = h
	e.decided <- true
	h.relay(http2.FromServer, c.client, c.ur, c.cw)
}

// h2ProbeTTL is how long the answer to "does the upstream speak HTTP/2"
// is kept before it is asked again.
const h2ProbeTTL = time.Minute

// h2Probe caches whether the upstream speaks HTTP/2.
type h2Probe struct {
	mu   sync.Mutex // held while probing, so one probe runs at a time
	yes  bool
	when time.Time
}

// upstreamH2 reports whether the upstream speaks HTTP/2, asking it at
// most once a minute: an https upstream by a TLS handshake offering h2
// (and http/1.1, so an HTTP/1 server completes it), an http:// one by
// sending the h2c preface and reading its first frame, which a server that
// speaks h2c answers with SETTINGS. An upstream that cannot be reached
// counts as no, so its clients get the HTTP/1 answer, a 502.
func (p *Proxy) upstreamH2() bool {
	p.probe.mu.Lock()
	defer p.probe.mu.Unlock()
	if !p.probe.when.IsZero() && time.Since(p.probe.when) < h2ProbeTTL {
		return p.probe.yes
	}
	p.probe.yes, p.probe.when = p.probeH2(), time.Now()
	return p.probe.yes
}

func (p *Proxy) probeH2() bool {
	c, err := p.dialWith(p.tlsH2)
	if err != nil {
		return false
	}
	defer c.Close()
	if tc, ok := c.(*tls.Conn); ok {
		return tc.ConnectionState().NegotiatedProtocol == "h2"
	}
	c.SetDeadline(time.Now().Add(p.opts.dialTimeout))
	var b bytes.Buffer
	b.WriteString(http2.Preface)
	xhttp2.NewFramer(&b, nil).WriteSettings()
	if _, err := c.Write(b.Bytes()); err != nil {
		return false
	}
	var h [9]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return false
	}
	return xhttp2.FrameType(h[3]) == xhttp2.FrameSettings && h[5]|h[6]|h[7]|h[8] == 0
}

// alpnByUpstream makes cfg, the listener's TLS configuration, offer h2
// only to clients while the upstream speaks HTTP/2 (listenProtocols).
func (p *Proxy) alpnByUpstream(cfg *tls.Config) *tls.Config {
	if cfg.GetConfigForClient != nil {
		return cfg // the caller chooses per client
	}
	h1 := cfg.Clone()
	h1.NextProtos = slices.DeleteFunc(slices.Clone(cfg.NextProtos), func(s string) bool { return s == "h2" })
	cfg = cfg.Clone()
	cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(hi.SupportedProtos, "h2") && !p.upstreamH2() {
			return h1, nil
		}
		return nil, nil
	}
	return cfg
}
