package replay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// tlsConfig is the configuration toward an https target whose host is
// host: WithTLSConfig's (trust, SNI) with the target's host as the SNI
// when none was set, certificates checked unless WithInsecure, and
// HTTP/1.1 by ALPN (the HTTP/2 client asks for h2). An empty host leaves
// the name to net/http's transport, which sets it per request (redirects
// go to other hosts). Each call has a TLS session cache of its own unless
// WithTLSConfig gave one: the HTTP/1 and HTTP/2 connections of a run share
// it, as a browser's do, so an h2 connection resumes the session an
// HTTP/1.1 one began, and the target pays the full handshakes its users
// paid, no more.
func (o *options) tlsConfig(host string) *tls.Config {
	c := &tls.Config{}
	if o.tls != nil {
		c = o.tls.Clone()
	}
	c.InsecureSkipVerify = c.InsecureSkipVerify || o.insecure //nolint:gosec // opt-in by name (--insecure)
	if host != "" {
		if c.ServerName == "" {
			c.ServerName = host
		}
		c.NextProtos = []string{"http/1.1"}
	}
	if c.ClientSessionCache == nil {
		c.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	return c
}

// TLSError means an https target's certificate is not trusted (CheckTLS):
// a replay should not start, since every request would fail.
type TLSError struct {
	Target string
	SNI    string
	Err    error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("target %s (sni %s): its TLS certificate is not trusted: %v; give the CA that issued it with --ca FILE (or the name it was issued for with --sni NAME), or skip the check by name with --insecure",
		e.Target, e.SNI, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }

// CheckTLS makes one TLS handshake with an https target, with the
// replay's TLS settings, and returns a *TLSError when the target's
// certificate is not trusted. Call it before Run, as 'reprise replay'
// does, so a certificate the replay does not trust stops it at once with
// what to do, instead of Run counting every request as failed. Anything
// else (refused, unreachable) returns nil and is left to Run, which counts
// it as usual; so does an http target or WithInsecure. The handshake's
// connection is closed: the target sees one connection more.
func (r *Replayer) CheckTLS(ctx context.Context) error {
	if r.target.Scheme != "https" || r.o.insecure || r.o.tls != nil && r.o.tls.InsecureSkipVerify {
		return nil
	}
	host, port := r.target.Hostname(), r.target.Port()
	if port == "" {
		port = "443"
	}
	cfg := r.o.tlsConfig(host)
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: r.o.connectTimeout}, Config: cfg}
	ctx, cancel := context.WithTimeout(ctx, r.o.connectTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err == nil {
		return c.Close()
	}
	var cv *tls.CertificateVerificationError
	var hn x509.HostnameError
	var ua x509.UnknownAuthorityError
	if errors.As(err, &cv) || errors.As(err, &hn) || errors.As(err, &ua) {
		return &TLSError{Target: r.target.Scheme + "://" + r.target.Host, SNI: cfg.ServerName, Err: err}
	}
	return nil
}
