package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsClient is an HTTP/1.1 client that trusts only cert.
func tlsClient(t *testing.T, cert tls.Certificate, c *tls.Config) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	c.RootCAs = pool
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c, ForceAttemptHTTP2: false}}
}

// selfSignedFile makes a SelfSigned certificate for the proxy and writes
// it out as the CLI's --tls-cert-out does, for curl --cacert.
func selfSignedFile(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	cert, err := SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(t.TempDir(), "proxy.pem")
	if err := os.WriteFile(certFile, CertPEM(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return cert, certFile
}

// TestTLSListen: clients talk TLS 1.2 and 1.3 to the proxy; what they
// sent and got is recorded in plaintext, and each connection is counted
// by its version, suite, SNI and ALPN.
func TestTLSListen(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "got "+r.URL.Path+" "+string(b))
	}))
	defer up.Close()
	cert, err := SelfSigned("shop.test", "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "shop.test"} {
		if err := cert.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate not for %s: %v", h, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3"} {
		if err := cert.Leaf.VerifyHostname(ip); err != nil {
			t.Errorf("certificate not for %s: %v", ip, err)
		}
	}
	r := startProxy(t, up.URL, WithListenTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	port := r.addr[strings.LastIndex(r.addr, ":")+1:]
	cases := []struct {
		name, alpn string
		cfg        *tls.Config
		url        string
	}{
		// TLS 1.3 to the address: no SNI
		{"tls13", "http/1.1", &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{"http/1.1"}}, "https://" + r.addr + "/a"},
		// TLS 1.2 by name, offering h2 first: the upstream speaks
		// HTTP/1 only, so the proxy picks http/1.1
		{"tls12", "http/1.1", &tls.Config{MaxVersion: tls.VersionTLS12, ServerName: "shop.test", NextProtos: []string{"h2", "http/1.1"},
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}}, "https://" + r.addr + "/b"},
		// by the name localhost, without ALPN
		{"localhost", "", &tls.Config{}, "https://localhost:" + port + "/c"},
	}
	for _, c := range cases {
		cl := tlsClient(t, cert, c.cfg)
		resp, err := cl.Post(c.url, "text/plain", strings.NewReader(c.name))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cl.CloseIdleConnections()
		if want := "got /" + c.url[len(c.url)-1:] + " " + c.name; string(b) != want || resp.TLS == nil || resp.TLS.NegotiatedProtocol != c.alpn {
			t.Errorf("%s: got %q, tls %+v", c.name, b, resp.TLS)
		}
	}
	// A client that does not trust the certificate fails its handshake.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + r.addr + "/"); err == nil {
		t.Error("a client without the certificate was served")
	}
	xs := r.stop(t)
	if len(xs) != 3 {
		t.Fatalf("recorded %d exchanges", len(xs))
	}
	for _, x := range xs {
		if !strings.HasPrefix(string(x.Response.Body), "got "+x.Request.Target+" ") || string(x.Request.Body) == "" || x.Flags != 0 {
			t.Errorf("recorded %s %q -> %q flags %v", x.Request.Target, x.Request.Body, x.Response.Body, x.Flags)
		}
	}
	// TLS 1.3's suite is the server's choice by the hardware: force none.
	c := r.p.Counters()
	suite13 := "TLS_AES_128_GCM_SHA256"
	if c.TLS["TLS 1.3 TLS_CHACHA20_POLY1305_SHA256 alpn=http/1.1"] > 0 {
		suite13 = "TLS_CHACHA20_POLY1305_SHA256"
	}
	want := map[string]uint64{
		"TLS 1.3 " + suite13 + " alpn=http/1.1":                                             1,
		"TLS 1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 sni=shop.test alpn=http/1.1": 1,
		"TLS 1.3 " + suite13 + " sni=localhost":                                             1,
	}
	for k, v := range want {
		if c.TLS[k] != v {
			t.Errorf("TLS[%q] = %d, want %d; all %v", k, c.TLS[k], v, c.TLS)
		}
	}
	if len(c.TLS) != len(want) || c.Unsupported["tls handshake failed"] != 1 {
		t.Errorf("counters %+v", c)
	}
}

// TestTLSListenNeedsCert: a TLS listener without a certificate is refused
// at construction, with what to do.
func TestTLSListenNeedsCert(t *testing.T) {
	_, err := New("http://127.0.0.1:1", WithListenTLS(&tls.Config{}))
	if err == nil || !strings.Contains(err.Error(), "SelfSigned") {
		t.Fatalf("err %v", err)
	}
}

// TestTLSFingerprint is the colon hex of the certificate's SHA-256.
func TestTLSFingerprint(t *testing.T) {
	cert, err := SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(cert)
	if len(fp) != 32*3-1 || strings.Count(fp, ":") != 31 || strings.ToUpper(fp) != fp {
		t.Fatalf("fingerprint %q", fp)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(CertPEM(cert)) {
		t.Fatal("CertPEM is not PEM")
	}
}

// TestTLSUpstreamUntrusted: the 502 an untrusted upstream gets says how
// to trust it.
func TestTLSUpstreamUntrusted(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	r := startProxy(t, srv.URL)
	resp, err := http.Get("http://" + r.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(b), "--upstream-ca") || !strings.Contains(string(b), "--insecure") {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	insecure := startProxy(t, srv.URL, WithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	if !insecure.p.Insecure() || r.p.Insecure() {
		t.Fatal("Insecure does not say whether the upstream is checked")
	}
}
