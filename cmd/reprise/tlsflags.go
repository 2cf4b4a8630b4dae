package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/reprise-tool/reprise/capture/proxy"
)

// proxyTLSFlags are the TLS flags of the verbs that run the recording
// proxy ('reprise proxy', 'reprise shadow'): TLS toward the clients and
// trust toward an https upstream.
type proxyTLSFlags struct {
	cert, key    string
	selfSigned   bool
	hosts        []string
	certOut      string
	upstreamCA   string
	insecure     bool
	insecureName string // the flag that sets insecure, for messages
}

// add defines the flags on f; insecureName is the name skipping the
// upstream's certificate check goes by ("insecure" in proxy; shadow's
// --insecure is about the shadow, so there it is "upstream-insecure").
func (t *proxyTLSFlags) add(f *pflag.FlagSet, insecureName string) {
	t.insecureName = insecureName
	f.StringVar(&t.cert, "tls-cert", "", "listen with TLS: certificate chain (PEM) shown to clients; needs --tls-key")
	f.StringVar(&t.key, "tls-key", "", "listen with TLS: the certificate's private key (PEM)")
	f.BoolVar(&t.selfSigned, "tls-self-signed", false, "listen with TLS with a throwaway self-signed certificate (tests, demos); prints its SHA-256 fingerprint")
	f.StringSliceVar(&t.hosts, "tls-host", nil, "with --tls-self-signed: more names or addresses for the certificate besides 127.0.0.1, ::1 and localhost (repeatable)")
	f.StringVar(&t.certOut, "tls-cert-out", "", "with --tls-self-signed: write the certificate (not its key) to this file, for clients' --cacert")
	f.StringVar(&t.upstreamCA, "upstream-ca", "", "trust the https upstream's certificate by this CA file (PEM) as well as the system roots")
	f.BoolVar(&t.insecure, insecureName, false, "do not check the https upstream's certificate (named, loud in the summary)")
}

// any reports whether any of the flags was given.
func (t *proxyTLSFlags) any() bool {
	return t.cert != "" || t.key != "" || t.selfSigned || len(t.hosts) > 0 || t.certOut != "" || t.upstreamCA != "" || t.insecure
}

// listen returns the TLS configuration toward the clients (nil: plain
// HTTP) and a line saying how it is set up, with the fingerprint of a
// self-signed certificate. Its errors are command-line mistakes.
func (t *proxyTLSFlags) listen() (*tls.Config, string, error) {
	switch {
	case t.selfSigned && (t.cert != "" || t.key != ""):
		return nil, "", errors.New("--tls-self-signed makes its own certificate: drop --tls-cert and --tls-key, or drop --tls-self-signed")
	case !t.selfSigned && (len(t.hosts) > 0 || t.certOut != ""):
		return nil, "", errors.New("--tls-host and --tls-cert-out go with --tls-self-signed")
	case (t.cert == "") != (t.key == ""):
		return nil, "", errors.New("listening with TLS needs both --tls-cert FILE and --tls-key FILE")
	}
	if t.cert != "" {
		cert, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, "", fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}},
			fmt.Sprintf("TLS with %s, SHA-256 fingerprint %s", t.cert, proxy.Fingerprint(cert)), nil
	}
	if !t.selfSigned {
		return nil, "", nil
	}
	cert, err := proxy.SelfSigned(t.hosts...)
	if err != nil {
		return nil, "", fmt.Errorf("--tls-self-signed: %w", err)
	}
	line := "TLS with a self-signed certificate for " + strings.Join(append([]string{"127.0.0.1", "::1", "localhost"}, t.hosts...), ", ") +
		", SHA-256 fingerprint " + proxy.Fingerprint(cert)
	if t.certOut != "" {
		if err := os.WriteFile(t.certOut, proxy.CertPEM(cert), 0o644); err != nil {
			return nil, "", fmt.Errorf("--tls-cert-out: %w", err)
		}
		line += ", written to " + t.certOut
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, line, nil
}

// upstream returns the TLS configuration toward upstream (nil: the
// system roots), refusing trust flags for a plain http:// upstream.
func (t *proxyTLSFlags) upstream(upstream string) (*tls.Config, error) {
	if t.upstreamCA == "" && !t.insecure {
		return nil, nil
	}
	if !strings.HasPrefix(strings.ToLower(upstream), "https://") {
		return nil, fmt.Errorf("--upstream-ca and --%s apply to an https:// upstream, not %q", t.insecureName, upstream)
	}
	c := &tls.Config{InsecureSkipVerify: t.insecure} //nolint:gosec // opt-in by name, loud in the summary
	if t.upstreamCA != "" {
		pool, err := caPool("--upstream-ca", t.upstreamCA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	return c, nil
}

// insecureWarning is the start's and the summary's line when the
// upstream's certificate goes unchecked by the flag name.
func insecureWarning(name string) string {
	return fmt.Sprintf("WARNING: --%s: the upstream's TLS certificate was NOT checked; anyone on the path could have answered", name)
}

// replayTLS is the TLS configuration 'reprise replay --ca --sni' asks for
// (nil when neither is given: the system roots and the target's host).
func replayTLS(ca, sni string) (*tls.Config, error) {
	if ca == "" && sni == "" {
		return nil, nil
	}
	c := &tls.Config{ServerName: sni}
	if ca != "" {
		pool, err := caPool("--ca", ca)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	return c, nil
}

// caPool reads a CA file (PEM certificates) for flag and adds it to the
// system roots, so a private CA is trusted besides the public ones.
func caPool(flag, path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in the file; give the CA's certificate (-----BEGIN CERTIFICATE-----)", flag, path)
	}
	return pool, nil
}
