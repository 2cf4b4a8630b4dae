package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/capture/tlsdecrypt"
)

// listenProtocols are the protocols the TLS listener offers by ALPN: h2
// first, so a client that can speak it does (its connection goes to the
// HTTP/2 relay, serveH2), and http/1.1 for the rest. h2 is offered only
// while the upstream speaks HTTP/2 (upstreamH2): a client that offers h2
// and http/1.1 to a proxy in front of an HTTP/1-only service is answered
// in HTTP/1.1, as before the proxy knew HTTP/2, instead of failing.
func listenProtocols() []string { return []string{"h2", "http/1.1"} }

// WithListenTLS terminates TLS on every accepted connection with c, which
// must hold a certificate (Certificates or GetCertificate): the clients
// talk TLS to the proxy, and what they send is relayed and recorded in
// plaintext. The proxy sets the ALPN protocols itself (h2 while the
// upstream speaks HTTP/2, and http/1.1: listenProtocols) and
// refuses versions below TLS 1.2. Each connection's version, suite, SNI
// and ALPN are counted in the recording's Counters.TLS, as decrypted
// captures count theirs; the keys are never kept.
func WithListenTLS(c *tls.Config) Option {
	return func(o *options) error {
		if c == nil || len(c.Certificates) == 0 && c.GetCertificate == nil {
			return errors.New("listen TLS needs a certificate: load one with tls.LoadX509KeyPair or make a throwaway one with SelfSigned")
		}
		c = c.Clone()
		c.NextProtos = listenProtocols()
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
		o.listenTLS = c
		return nil
	}
}

// SelfSigned makes a throwaway ECDSA P-256 certificate for tests and
// demos, valid from an hour ago for a week, for 127.0.0.1, ::1, localhost
// and hosts (names or IP addresses). Its key lives only in memory: a
// client trusts it by its fingerprint or by the certificate written out
// with CertPEM, never by a CA.
func SelfSigned(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "reprise proxy (self-signed)", Organization: []string{"Reprise"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// A CA of itself, so a client given the certificate as its CA
		// file (curl --cacert) accepts it as the anchor of its own chain.
		IsCA: true, BasicConstraintsValid: true,
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		switch ip := net.ParseIP(h); {
		case h == "":
		case ip != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Fingerprint is the SHA-256 of the certificate's leaf, in the colon hex
// that 'openssl x509 -fingerprint -sha256' and browsers show, so a user
// can check what a client was shown.
func Fingerprint(cert tls.Certificate) string {
	if len(cert.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(cert.Certificate[0])
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// CertPEM is the certificate chain as PEM, without the key: what a client
// takes as its CA file to trust a SelfSigned certificate.
func CertPEM(cert tls.Certificate) []byte {
	var b []byte
	for _, der := range cert.Certificate {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return b
}

// tlsKind names a terminated connection's parameters the way decrypted
// captures name theirs in Counters.TLS: "TLS 1.3 TLS_AES_128_GCM_SHA256
// sni=shop.test alpn=http/1.1".
func tlsKind(st tls.ConnectionState) string {
	return tlsdecrypt.Info{Version: st.Version, Suite: st.CipherSuite, SNI: st.ServerName, ALPN: st.NegotiatedProtocol}.String()
}

// maxTLSKinds bounds the distinct TLS kinds counted (SNIs can be many);
// past it they count as "other", as in capture.
const maxTLSKinds = 1000

// countTLS counts one terminated connection by its parameters.
func (p *Proxy) countTLS(st tls.ConnectionState) {
	kind := tlsKind(st)
	p.mu.Lock()
	if _, ok := p.tlsKinds[kind]; !ok && len(p.tlsKinds) >= maxTLSKinds {
		kind = "other"
	}
	p.tlsKinds[kind]++
	p.mu.Unlock()
}

// handshake completes the client's TLS handshake, when the proxy
// terminates TLS, within the dial timeout, and counts the connection by
// its parameters or as a failed handshake. It reports whether to go on.
func (c *conn) handshake() bool {
	tc, ok := c.client.(*tls.Conn)
	if !ok {
		return true
	}
	tc.SetDeadline(time.Now().Add(c.p.opts.dialTimeout))
	if err := tc.Handshake(); err != nil {
		c.p.countUnsupported("tls handshake failed")
		return false
	}
	tc.SetDeadline(time.Time{})
	c.p.countTLS(tc.ConnectionState())
	return true
}

// closeWrite half-closes w when it can (TCP; TLS sends close_notify), so
// the peer reads to the end of what was sent.
func closeWrite(w net.Conn) bool {
	if cw, ok := w.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return true
	}
	return false
}
