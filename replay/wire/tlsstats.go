package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"maps"
	"net"
	"slices"
	"time"
)

// TLS handshake failure kinds (TLSStats.Failed).
const (
	// HandshakeCertificate: the target's certificate was not trusted
	// (unknown CA, wrong name, expired); give --ca or --sni.
	HandshakeCertificate = "certificate"
	// HandshakeTimeout: the handshake did not finish within the
	// connect timeout.
	HandshakeTimeout = "timeout"
	// HandshakeProtocol: anything else: an alert from the server (no
	// common version or suite), a reset, or an answer that is not TLS.
	HandshakeProtocol = "protocol"
)

// TLSStats says what a client's TLS handshakes cost: each new https
// connection makes one, and a resumed one (from a session ticket) is the
// cheaper kind that real clients make on their second connection.
type TLSStats struct {
	Handshakes uint64 // completed, resumed ones included
	Resumed    uint64 // of Handshakes, those that resumed a session
	// Failed counts failed handshakes by kind (the Handshake* constants);
	// a handshake cut short by a stopped run is not counted.
	Failed map[string]uint64
	// Handshake holds the completed handshakes' latencies (after the TCP
	// connect), in the order they happened, up to maxConnectSamples.
	Handshake []time.Duration
	Versions  map[string]uint64 // completed handshakes by version ("TLS 1.3")
	ALPN      map[string]uint64 // completed handshakes by ALPN protocol ("none" when none)
}

// tlsStats is TLSStats under a client; its fields are guarded by the
// connStats' mu (handshakes are as rare as connections).
type tlsStats struct {
	handshakes, resumed uint64
	failed              map[string]uint64
	latency             []time.Duration
	versions, alpn      map[string]uint64
}

// handshook counts a completed handshake that took d.
func (s *connStats) handshook(d time.Duration, cs tls.ConnectionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.tls
	t.handshakes++
	if cs.DidResume {
		t.resumed++
	}
	if len(t.latency) < maxConnectSamples {
		t.latency = append(t.latency, d)
	}
	alpn := cs.NegotiatedProtocol
	if alpn == "" {
		alpn = "none"
	}
	t.versions = inc(t.versions, tls.VersionName(cs.Version))
	t.alpn = inc(t.alpn, alpn)
}

// handshakeFailed counts a failed handshake of the given kind.
func (s *connStats) handshakeFailed(kind string) {
	s.mu.Lock()
	s.tls.failed = inc(s.tls.failed, kind)
	s.mu.Unlock()
}

func inc(m map[string]uint64, k string) map[string]uint64 {
	if m == nil {
		m = make(map[string]uint64)
	}
	m[k]++
	return m
}

// snapshot copies t; the caller holds the connStats' mu.
func (t *tlsStats) snapshot() TLSStats {
	return TLSStats{Handshakes: t.handshakes, Resumed: t.resumed, Failed: maps.Clone(t.failed),
		Handshake: slices.Clone(t.latency), Versions: maps.Clone(t.versions), ALPN: maps.Clone(t.alpn)}
}

// handshakeFailure names the kind of a failed handshake's error.
func handshakeFailure(err error) string {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var ne net.Error
	switch {
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci):
		return HandshakeCertificate
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return HandshakeTimeout
	}
	return HandshakeProtocol
}

// withSessionCache returns c with a client session cache, as browsers
// and other real clients keep one, so that a replay's later connections
// to a target resume their TLS session as its users' did (and a target
// that issues no tickets shows none resumed). A cache c already has is
// kept; nil stays nil.
func withSessionCache(c *tls.Config) *tls.Config {
	if c == nil || c.ClientSessionCache != nil {
		return c
	}
	c = c.Clone()
	c.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	return c
}
