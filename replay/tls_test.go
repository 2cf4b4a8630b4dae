package replay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// CheckTLS refuses an https target whose certificate the replay does not
// trust, and lets through what WithTLSConfig trusts (a CA, another name
// as the SNI), WithInsecure, http targets and targets it cannot reach
// (Run counts those).
func TestCheckTLS(t *testing.T) {
	var sni atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni.Store(r.TLS.ServerName)
		io.WriteString(w, r.TLS.NegotiatedProtocol)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "https://" + l.Addr().String()
	l.Close()
	tests := []struct {
		name    string
		target  string
		opts    []Option
		refused bool
		sni     string // the SNI the served request saw, when it runs
	}{
		// The system roots do not know the test's CA.
		{"untrusted", srv.URL, nil, true, ""},
		// Its CA: trusted, the SNI is the target's host (an address: none sent).
		{"ca", srv.URL, []Option{WithTLSConfig(&tls.Config{RootCAs: pool})}, false, ""},
		// Another name the certificate holds, as the SNI.
		{"sni", srv.URL, []Option{WithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "example.com"})}, false, "example.com"},
		// A name it does not hold.
		{"wrong sni", srv.URL, []Option{WithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "other.test"})}, true, ""},
		// Not checked, by name.
		{"insecure", srv.URL, []Option{WithInsecure(true)}, false, ""},
		// Nothing listens: left to Run.
		{"refused", dead, nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.target, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			err = r.CheckTLS(context.Background())
			var te *TLSError
			if tt.refused != errors.As(err, &te) || !tt.refused && err != nil {
				t.Fatalf("CheckTLS: %v", err)
			}
			if tt.refused || tt.target == dead {
				return
			}
			rep := run(t, tt.target, source(rec("s", "GET", "/secure", 0, 1)), tt.opts...)
			if rep.StatusCodes["200"] != 1 || sni.Load() != tt.sni {
				t.Fatalf("statuses %v, errors %v, sni %q", rep.StatusCodes, rep.Errors, sni.Load())
			}
		})
	}
	if _, err := New(srv.URL, WithTLSConfig(nil)); err == nil {
		t.Error("a nil TLS config was accepted")
	}
}
