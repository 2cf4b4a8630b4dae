// Package proxy is a recording reverse proxy: it forwards HTTP/1.x and
// HTTP/2 (h2c, h2, gRPC) traffic from clients to one upstream and records what it forwarded as
// session.Exchanges, with the same fields packet capture gives. It needs no
// privileges and works where TLS ends at the service, so it is the way to
// record where live capture cannot run.
//
// # What the client and the upstream see
//
// The proxy is a parsing relay, not a re-encoding one: each client
// connection gets its own upstream connection, and the bytes of every
// request and response are written to the other side exactly as they were
// read. Header names keep their case and order, nothing is added or removed
// (no Via, no X-Forwarded-For, and hop-by-hop fields such as Connection
// pass through, which is right because the two connections are paired one
// to one), the Host field is the one the client sent, chunked bodies keep
// their chunk boundaries and extensions, and bytes are flushed as soon as
// the proxy would otherwise wait, so streamed responses (chunked,
// Server-Sent Events) and request bodies reach the other side as they
// arrive. Keep-alive and pipelining mirror the client's: the upstream sees
// as many connections, reused as often, as the proxy's clients open.
//
// What differs from a direct connection: the upstream sees the proxy's
// address as the peer; connections are opened to the upstream when the
// first request head has arrived, not at accept; a connection the upstream
// closes is closed toward the client after the last response byte.
//
// # What is recorded
//
// Each exchange carries the client and upstream addresses, a connection ID
// per client connection, its index on that connection, headers as received,
// bodies up to the body cap with truncation flags, and four timestamps from
// the proxy's clock: when the first and last bytes of the request and of the
// (final) response were read. Interim 1xx responses (100 Continue) are
// relayed and not recorded. Upgrades (WebSocket) and CONNECT are tunnelled
// untouched and counted as unsupported, not recorded; so is a connection
// whose bytes are neither HTTP/1.x nor HTTP/2 (TLS the proxy does not
// terminate), which is relayed byte for byte. An upstream that cannot be
// reached gets the client a 502, recorded with a warning that says why.
//
// # HTTP/2 and gRPC
//
// A client that opens with the HTTP/2 preface (h2c with prior knowledge),
// upgrades with Upgrade: h2c (when the upstream accepts it with a 101) or
// negotiates h2 by ALPN is relayed to the upstream in HTTP/2 too: h2c to
// an http:// upstream, h2 over TLS to an https:// one. The relay copies
// the frames byte for byte, so gRPC streams of every kind, trailers,
// RST_STREAM and flow control pass untouched and as they come, and tees
// them into session/http2's assembler, the parser packet capture uses: each
// stream is recorded as one exchange with the HTTP/2 and gRPC fields a
// capture of the client's connection would give (h2.go). An HTTP/2 client
// whose upstream is unreachable, or does not accept h2, gets a GOAWAY that
// says why. Stats count connections by protocol and the streams.
//
// # TLS
//
// With WithListenTLS the proxy terminates TLS from its clients (TLS 1.2
// and 1.3, h2 or HTTP/1.1 by ALPN; SelfSigned makes a throwaway certificate for
// tests and demos) and relays and records the plaintext; each
// connection's version, suite, SNI and ALPN are counted in Counters.TLS,
// in the form key-log decryption uses, and a failed handshake as
// unsupported "tls handshake failed". An https:// upstream's certificate
// is verified (WithTLSConfig adds a CA, or turns the check off by name).
//
// # Not slowing the traffic down
//
// Recorded exchanges wait in a bounded queue read through Next (the
// session.Source shape). Forwarding never waits for the recorder: when the
// queue is full the exchange is dropped from the recording and counted in
// Stats.Dropped, which the CLI reports in its status line, its summary and
// the recording's metadata. A recording is never silently short.
//
// # Recording, or reading the exchanges yourself
//
// Record runs the proxy and writes what it forwards through capture.Record,
// the one loop every recording goes through (redaction, sessions,
// metadata, counters), as 'reprise proxy' does. A program that does
// something else with the exchanges (a shadow mirror) starts the proxy
// with Start and reads Next.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// DefaultMaxBody is the default per-body cap on recorded bytes. Bodies are
// always forwarded whole; only the recording is capped.
const DefaultMaxBody = 1 << 20

type options struct {
	maxBody     int64
	queue       int
	dialTimeout time.Duration
	grace       time.Duration
	tls         *tls.Config // toward an https upstream
	listenTLS   *tls.Config // toward clients, when the proxy terminates TLS
}

// Option configures a Proxy.
type Option func(*options) error

// WithMaxBody caps the recorded bytes of each body; longer bodies are
// forwarded whole and recorded truncated with their full size. 0 records
// no body bytes.
func WithMaxBody(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("max body %d is negative; use 0 to record no body bytes", n)
		}
		o.maxBody = n
		return nil
	}
}

// WithQueue sets how many recorded exchanges may wait for Next before
// further ones are dropped (and counted). The default is 4096.
func WithQueue(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("queue size %d must be at least 1", n)
		}
		o.queue = n
		return nil
	}
}

// WithDialTimeout bounds connecting to the upstream (default 10s).
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("dial timeout %v must be positive", d)
		}
		o.dialTimeout = d
		return nil
	}
}

// WithGrace sets how long Serve lets exchanges in flight finish after its
// context ends before closing their connections (default 5s).
func WithGrace(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("grace %v is negative", d)
		}
		o.grace = d
		return nil
	}
}

// WithTLSConfig sets the TLS configuration for an https upstream. The
// default verifies the upstream's certificate against the system roots;
// set RootCAs to trust a private CA. InsecureSkipVerify is honoured, and
// shows in Insecure, so a summary can say so loudly.
func WithTLSConfig(c *tls.Config) Option {
	return func(o *options) error {
		o.tls = c
		return nil
	}
}

// Stats are the proxy's counters so far.
type Stats struct {
	Connections uint64 // client connections accepted
	Open        int64  // client connections open now
	Exchanges   uint64 // exchanges queued for the recording
	Incomplete  uint64 // of those, with FlagNoResponse or a gap
	Dropped     uint64 // exchanges not recorded because the queue was full
	Errors      uint64 // 502s the proxy answered itself (upstream unreachable)
	BytesUp     uint64 // bytes forwarded client -> upstream
	BytesDown   uint64 // bytes forwarded upstream -> client
	// Unsupported counts what was relayed but not recorded: "websocket",
	// "upgrade", "connect", "non-http", "malformed", "tls handshake failed",
	// and HTTP/2 streams whose header blocks did not decode
	// ("http2-undecodable/" and the reason, as capture counts them).
	Unsupported map[string]uint64
	// TLS counts the client connections whose TLS the proxy terminated,
	// by version, suite, SNI and ALPN ("TLS 1.3 TLS_AES_128_GCM_SHA256
	// sni=shop.test alpn=http/1.1"), as Counters.TLS has them.
	TLS map[string]uint64
	// Protocols counts the client connections relayed and recorded by
	// the protocol they spoke: "h1", "h2c" (prior knowledge or an
	// Upgrade, which then no longer counts as h1) and "h2" (by ALPN).
	Protocols map[string]uint64
	// Streams counts the HTTP/2 streams begun (each recorded as one
	// exchange unless undecodable).
	Streams uint64
}

// Proxy is a recording reverse proxy for one upstream. Serve it on a
// listener and read what it recorded with Next.
type Proxy struct {
	opts     options
	upstream *url.URL
	addr     string      // upstream host:port to dial
	tls      *tls.Config // toward an https upstream, ALPN http/1.1
	tlsH2    *tls.Config // the same with ALPN h2, for HTTP/2 clients

	out      chan *session.Exchange
	served   atomic.Bool
	nextConn atomic.Uint64

	conns, exchanges, incomplete, dropped, errs, bytesUp, bytesDown, streams atomic.Uint64
	open                                                                     atomic.Int64

	mu          sync.Mutex
	unsupported map[string]uint64
	tlsKinds    map[string]uint64
	protocols   map[string]uint64
	probe       h2Probe
	live        map[*conn]struct{}
	connRecs    []session.ConnInfo // ended connections, not yet taken (TakeConns)
}

// New returns a proxy forwarding to upstream, an http:// or https:// URL
// with no path ("http://127.0.0.1:8080").
func New(upstream string, opts ...Option) (*Proxy, error) {
	o := options{maxBody: DefaultMaxBody, queue: 4096, dialTimeout: 10 * time.Second, grace: 5 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w; give a URL such as http://127.0.0.1:8080", upstream, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: want an http:// or https:// URL such as http://127.0.0.1:8080", upstream)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("upstream %q: a path or query is not supported; the proxy forwards request-targets unchanged", upstream)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	p := &Proxy{
		opts: o, upstream: u, addr: addr,
		out:         make(chan *session.Exchange, o.queue),
		unsupported: map[string]uint64{},
		tlsKinds:    map[string]uint64{},
		protocols:   map[string]uint64{},
		live:        map[*conn]struct{}{},
	}
	if u.Scheme == "https" {
		p.tls = o.tls
		if p.tls == nil {
			p.tls = &tls.Config{}
		}
		p.tls = p.tls.Clone()
		if p.tls.ServerName == "" {
			p.tls.ServerName = u.Hostname()
		}
		p.tlsH2 = p.tls.Clone()
		p.tls.NextProtos = []string{"http/1.1"}
		// http/1.1 too, so a server without h2 completes the handshake
		// and the proxy can tell the client why (dialH2).
		p.tlsH2.NextProtos = []string{"h2", "http/1.1"}
	}
	if o.listenTLS != nil {
		p.opts.listenTLS = p.alpnByUpstream(o.listenTLS)
	}
	return p, nil
}

// ListensTLS reports whether the proxy terminates TLS from its clients.
func (p *Proxy) ListensTLS() bool { return p.opts.listenTLS != nil }

// Insecure reports whether the upstream's certificate goes unchecked.
func (p *Proxy) Insecure() bool { return p.tls != nil && p.tls.InsecureSkipVerify }

// Upstream returns the upstream URL as given.
func (p *Proxy) Upstream() string { return p.upstream.String() }

// MaxBody returns the per-body recording cap in force.
func (p *Proxy) MaxBody() int64 { return p.opts.maxBody }

// ErrServed means Serve was called twice on one Proxy.
var ErrServed = errors.New("proxy already served; make a new Proxy per listener")

// Serve accepts connections on ln and relays them until ctx ends. Then it
// stops accepting, lets exchanges in flight finish within the grace
// period, closes every connection, and returns; after that Next returns
// io.EOF once the queue is drained. Serve closes ln.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	if p.served.Swap(true) {
		return ErrServed
	}
	defer close(p.out)
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var err error
	delay := 5 * time.Millisecond
	for {
		c, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(aerr, &ne) && ne.Timeout() {
				time.Sleep(delay)
				delay = min(2*delay, time.Second)
				continue
			}
			err = fmt.Errorf("accept on %s: %w", ln.Addr(), aerr)
			break
		}
		delay = 5 * time.Millisecond
		cn := p.newConn(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn.serve()
		}()
	}
	ln.Close()
	p.shutdown(&wg)
	return err
}

// Start listens on addr, refused outside loopback unless allowRemote (see
// CheckListen), and serves it in the background until ctx ends. It returns
// the address listened on, for clients and the recording's Source, and a
// function that waits for Serve to return and gives its error. A program
// that records or mirrors what the proxy forwards reads it with Next.
func (p *Proxy) Start(ctx context.Context, addr string, allowRemote bool) (string, func() error, error) {
	if err := CheckListen(addr, allowRemote); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx, ln) }()
	return ln.Addr().String(), func() error { return <-served }, nil
}

// shutdown closes idle connections at once and busy ones when they turn
// idle or the grace period ends, then waits for every connection.
func (p *Proxy) shutdown(wg *sync.WaitGroup) {
	deadline := time.Now().Add(p.opts.grace)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		force := !time.Now().Before(deadline)
		p.mu.Lock()
		for c := range p.live {
			if force || c.inflight.Load() == 0 {
				c.close()
			}
		}
		p.mu.Unlock()
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

// Buffered returns how many recorded exchanges are ready for Next; with
// none, Next blocks (the recording loop hands its batch over first).
func (p *Proxy) Buffered() int { return len(p.out) }

// Next returns the next recorded exchange, blocking until one is ready,
// and io.EOF after Serve has returned and every exchange has been read.
// Exchanges of one connection come in their order; different connections
// interleave by completion.
func (p *Proxy) Next() (*session.Exchange, error) {
	x, ok := <-p.out
	if !ok {
		return nil, io.EOF
	}
	return x, nil
}

var _ session.Source = (*Proxy)(nil)

// Stats returns the counters so far. It is safe to call at any time.
func (p *Proxy) Stats() Stats {
	s := Stats{
		Connections: p.conns.Load(), Open: p.open.Load(),
		Exchanges: p.exchanges.Load(), Incomplete: p.incomplete.Load(),
		Dropped: p.dropped.Load(), Errors: p.errs.Load(),
		BytesUp: p.bytesUp.Load(), BytesDown: p.bytesDown.Load(),
		Streams: p.streams.Load(),
	}
	p.mu.Lock()
	if len(p.protocols) > 0 {
		s.Protocols = maps.Clone(p.protocols)
	}
	if len(p.unsupported) > 0 {
		s.Unsupported = maps.Clone(p.unsupported)
	}
	if len(p.tlsKinds) > 0 {
		s.TLS = maps.Clone(p.tlsKinds)
	}
	p.mu.Unlock()
	return s
}

// Counters returns the stats in the recording's metadata shape. Exchanges
// dropped because the recorder fell behind are counted as unsupported
// "dropped" so the metadata shows them.
func (p *Proxy) Counters() session.Counters {
	s := p.Stats()
	c := session.Counters{
		Connections: s.Connections, Exchanges: s.Exchanges, Incomplete: s.Incomplete,
		Unsupported: s.Unsupported, TLS: s.TLS,
	}
	if s.Dropped > 0 {
		if c.Unsupported == nil {
			c.Unsupported = map[string]uint64{}
		}
		c.Unsupported["dropped"] = s.Dropped
	}
	return c
}

// Source returns the Metadata.Source string for a proxy listening on
// listen: "proxy:127.0.0.1:9000->http://127.0.0.1:8089".
func (p *Proxy) Source(listen string) string {
	return "proxy:" + listen + "->" + p.upstream.String()
}

// countProto counts a connection as speaking proto.
func (p *Proxy) countProto(proto session.Protocol) {
	p.mu.Lock()
	p.protocols[proto.String()]++
	p.mu.Unlock()
}

// upgradedProto moves a connection counted as h1 to proto.
func (p *Proxy) upgradedProto(proto session.Protocol) {
	p.mu.Lock()
	if p.protocols["h1"]--; p.protocols["h1"] == 0 {
		delete(p.protocols, "h1")
	}
	p.protocols[proto.String()]++
	p.mu.Unlock()
}

func (p *Proxy) countUnsupported(kind string) {
	p.mu.Lock()
	p.unsupported[kind]++
	p.mu.Unlock()
}

// emit queues x for Next without ever blocking the relay.
func (p *Proxy) emit(x *session.Exchange) {
	incomplete := x.Flags.Incomplete() // x belongs to the reader once sent
	select {
	case p.out <- x:
		p.exchanges.Add(1)
		if incomplete {
			p.incomplete.Add(1)
		}
	default:
		p.dropped.Add(1)
	}
}

// dial connects to the upstream for an HTTP/1 connection.
func (p *Proxy) dial() (net.Conn, error) { return p.dialWith(p.tls) }

// dialWith connects to the upstream, with TLS configured by tc when the
// upstream is https.
func (p *Proxy) dialWith(tcfg *tls.Config) (net.Conn, error) {
	d := net.Dialer{Timeout: p.opts.dialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.Dial("tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if tcfg == nil {
		return c, nil
	}
	tc := tls.Client(c, tcfg)
	tc.SetDeadline(time.Now().Add(p.opts.dialTimeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return nil, fmt.Errorf("tls handshake: %w; trust the upstream's CA with --upstream-ca FILE, or skip the check by name with --insecure", err)
		}
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// ErrRemoteListen means a listen address is not on loopback and
// --allow-remote was not given.
var ErrRemoteListen = errors.New("listen address is not a loopback address")

// CheckListen refuses a listen address outside loopback unless
// allowRemote, because a recording proxy on a public interface records
// whoever finds it.
func CheckListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w; use host:port such as 127.0.0.1:9000", addr, err)
	}
	if allowRemote {
		return nil
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %q; listen on 127.0.0.1 or [::1], or pass --allow-remote to record from other hosts", ErrRemoteListen, addr)
	}
	return nil
}

func addrPort(a net.Addr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
