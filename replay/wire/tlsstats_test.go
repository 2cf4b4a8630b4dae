package wire_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/replay/wire"
)

// A Client times and counts its TLS handshakes: completed ones by
// version and ALPN, resumed ones from its own session cache, and failed
// ones by kind.
func TestTLSStats(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	get := &wire.Request{Method: "GET", Target: "/", Host: "shop", Close: true} // a connection each

	t.Run("completed and resumed", func(t *testing.T) {
		c := wire.New(wire.Config{Addr: addr, TLS: &tls.Config{ServerName: "127.0.0.1", RootCAs: pool, NextProtos: []string{"http/1.1"}},
			ConnectTimeout: 5 * time.Second, Timeout: 5 * time.Second, MaxIdle: 1})
		defer c.CloseAll()
		for range 3 {
			if resp, _, err := c.Do(context.Background(), get); err != nil || resp.Status != 200 {
				t.Fatalf("%v %+v", err, resp)
			}
		}
		s := c.Stats()
		ts := s.TLS
		if s.Opened != 3 || ts.Handshakes != 3 || len(ts.Handshake) != 3 || ts.Versions["TLS 1.3"] != 3 || ts.ALPN["http/1.1"] != 3 || len(ts.Failed) != 0 {
			t.Errorf("opened %d, tls %+v", s.Opened, ts)
		}
		// the first connection's ticket resumes the later ones
		if ts.Resumed != 2 {
			t.Errorf("%d of 3 handshakes resumed, want 2", ts.Resumed)
		}
	})

	tests := []struct {
		name string
		addr func(t *testing.T) string
		cfg  *tls.Config
		kind string
	}{
		// a CA that did not issue the certificate
		{"certificate", func(*testing.T) string { return addr }, &tls.Config{ServerName: "127.0.0.1", RootCAs: x509.NewCertPool()}, wire.HandshakeCertificate},
		// a server that accepts and never answers the ClientHello
		{"timeout", func(t *testing.T) string { return serveOne(t, func(c net.Conn) { io.Copy(io.Discard, c) }) }, &tls.Config{ServerName: "127.0.0.1", RootCAs: pool}, wire.HandshakeTimeout},
		// a server that answers in plain HTTP
		{"protocol", func(t *testing.T) string {
			return serveOne(t, func(c net.Conn) { io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n"); c.Close() })
		}, &tls.Config{ServerName: "127.0.0.1", RootCAs: pool}, wire.HandshakeProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := wire.New(wire.Config{Addr: tt.addr(t), TLS: tt.cfg, ConnectTimeout: 200 * time.Millisecond, Timeout: time.Second})
			defer c.CloseAll()
			if _, _, err := c.Do(context.Background(), get); err == nil {
				t.Fatal("the handshake did not fail")
			}
			if ts := c.Stats().TLS; ts.Handshakes != 0 || len(ts.Failed) != 1 || ts.Failed[tt.kind] != 1 {
				t.Errorf("tls %+v: want one %s failure", ts, tt.kind)
			}
		})
	}
}

// serveOne serves one loopback connection with handle.
func serveOne(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return testkit.ServeOne(t, ln, handle)
}
