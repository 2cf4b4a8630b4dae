package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// tlsNginx is Debian's nginx serving three files over TLS with h2 and
// http/1.1 by ALPN, with a certificate the test made (SelfSigned, for
// nginx.test and 127.0.0.1). Every response carries nginx's $request_id
// in X-Request-Id, and its access log says per request id which of its
// connections served it, with what status, body size and protocol.
type tlsNginx struct {
	url, log string
	roots    *x509.CertPool
	files    map[string][]byte
}

// nginxLogFormat is what tlsNginx logs per request.
const nginxLogFormat = "$request_id $connection $status $body_bytes_sent $server_protocol $request_method $request_uri"

func startTLSNginx(t *testing.T) *tlsNginx {
	t.Helper()
	dir := t.TempDir()
	cert, err := SelfSigned("nginx.test")
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := testkit.WriteKeyPair(t, dir, "nginx", cert)
	www := filepath.Join(dir, "www")
	n := &tlsNginx{log: filepath.Join(dir, "access.log"), roots: x509.NewCertPool(), files: map[string][]byte{
		"a.txt":  bytes.Repeat([]byte("a line of text\n"), 300),
		"b.json": bytes.Repeat([]byte(`{"id":1,"name":"tea","price":3.5},`), 1200),
		// more than the h2 initial window of 65535: flow control both ways
		"c.bin": func() []byte { b := make([]byte, 200_000); rand.Read(b); return b }(),
	}}
	n.roots.AddCert(cert.Leaf)
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range n.files {
		os.WriteFile(filepath.Join(www, name), b, 0o644)
	}
	addr := testkit.FreeAddr(t)
	// "listen ... ssl http2" is the form nginx 1.22 (Debian 12's) reads;
	// later versions accept it with a warning.
	testkit.StartNginx(t, dir, addr, fmt.Sprintf(`  server {
    listen %s ssl http2;
    server_name nginx.test;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 10000;
    add_header X-Request-Id $request_id always;
    root %s;
  }`, addr, certPath, keyPath, www), nginxLogFormat)
	n.url = "https://" + addr
	return n
}

// servedLine is one request in nginx's access log.
type servedLine struct {
	conn, status, size, proto, method, uri string
}

// served reads nginx's access log by request id, waiting a little for
// the want-th line to be written.
func (n *tlsNginx) served(t *testing.T, want int) map[string]servedLine {
	t.Helper()
	var lines []string
	for i := 0; i < 100; i++ {
		b, _ := os.ReadFile(n.log)
		lines = strings.Split(strings.Trim(string(b), "\n"), "\n")
		if len(b) == 0 {
			lines = nil
		}
		if len(lines) >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := map[string]servedLine{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 7 {
			t.Fatalf("access log line %q", l)
		}
		m[f[0]] = servedLine{conn: f[1], status: f[2], size: f[3], proto: f[4], method: f[5], uri: f[6]}
	}
	return m
}

// TestTLSNginxH2ThroughProxy is the proxy acceptance with Debian's
// nginx as the upstream: curl --http2, curl --http1.1 and Go clients (h2
// and http/1.1 by ALPN) talk TLS to a proxy with a self-signed
// certificate, which verifies nginx's certificate and speaks to it in
// what the client spoke (h2 to nginx's http2 listener for h2 clients).
// Every request nginx logged is recorded, joined by nginx's own request
// id: its status, body size and protocol, the served file byte for byte,
// and one nginx connection for each client connection.
func TestTLSNginxH2ThroughProxy(t *testing.T) {
	needCurl(t)
	ng := startTLSNginx(t)
	cert, certFile := selfSignedFile(t)
	r := startProxy(t, ng.url, WithTLSConfig(&tls.Config{RootCAs: ng.roots, ServerName: "nginx.test"}),
		WithListenTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	_, port, _ := net.SplitHostPort(r.addr)
	base := "https://localhost:" + port
	paths := []string{"/a.txt", "/b.json", "/c.bin", "/missing"}

	// curl, one connection per run, every path on it.
	for _, c := range []struct{ flag, version string }{{"--http2", "2"}, {"--http1.1", "1.1"}} {
		args := []string{c.flag, "--cacert", certFile}
		for _, p := range paths {
			args = append(args, base+p, "-o", "/dev/null", "-w", "%{http_version} %{response_code} %{size_download}\n")
		}
		var want strings.Builder
		for _, p := range paths {
			if b, ok := ng.files[p[1:]]; ok {
				fmt.Fprintf(&want, "%s 200 %d\n", c.version, len(b))
			}
		}
		got := curl(t, args...)
		if lines := strings.Split(got, "\n"); len(lines) != len(paths)+1 || !strings.HasPrefix(got, want.String()) ||
			!strings.HasPrefix(lines[len(paths)-1], c.version+" 404 ") {
			t.Errorf("curl %s got\n%s", c.flag, got)
		}
	}

	// Go's client: h2 by ALPN with its streams at once on one
	// connection (after a first request makes it), then http/1.1 with
	// its requests in turn on one.
	for _, alpn := range []string{"h2", "http/1.1"} {
		pool := x509.NewCertPool()
		pool.AddCert(cert.Leaf)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, NextProtos: []string{alpn}}, ForceAttemptHTTP2: alpn == "h2"}
		cl := &http.Client{Timeout: 10 * time.Second, Transport: tr}
		get := func(p string) {
			resp, err := cl.Get(base + p)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if f, ok := ng.files[p[1:]]; ok && !bytes.Equal(b, f) || resp.TLS.NegotiatedProtocol != alpn {
				t.Errorf("Go %s: %s: %s %d, %d bytes", alpn, p, resp.Proto, resp.StatusCode, len(b))
			}
		}
		get(paths[0])
		var wg sync.WaitGroup
		for _, p := range paths[1:] {
			if alpn != "h2" { // one at a time: one keep-alive connection
				get(p)
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); get(p) }()
		}
		wg.Wait()
		tr.CloseIdleConnections()
	}
	if t.Failed() {
		t.FailNow()
	}

	xs := r.stop(t)
	const requests = 4 * 4
	served := ng.served(t, requests)
	if len(xs) != requests || len(served) != requests {
		t.Fatalf("recorded %d exchanges, nginx served %d, clients sent %d", len(xs), len(served), requests)
	}
	byConn := map[uint64]string{}    // recorded connection -> nginx's
	nginxConn := map[string]uint64{} // and back
	h2 := map[uint64]bool{}
	for _, x := range xs {
		rid := x.Response.Header.Get("X-Request-Id")
		s, ok := served[rid]
		if !ok {
			t.Errorf("%s: request id %q not in nginx's log", x.Request.Target, rid)
			continue
		}
		delete(served, rid)
		wantProto := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[x.Conn.Protocol == session.ProtoH2]
		if got := fmt.Sprintf("%s %s %d %d %s", x.Request.Method, x.Request.Target, x.Response.Status, len(x.Response.Body), wantProto); got !=
			fmt.Sprintf("%s %s %s %s %s", s.method, s.uri, s.status, s.size, s.proto) || strconv.FormatInt(x.Response.BodySize, 10) != s.size {
			t.Errorf("recorded %s (body size %d); nginx served %+v", got, x.Response.BodySize, s)
		}
		if f, ok := ng.files[x.Request.Target[1:]]; ok && !bytes.Equal(x.Response.Body, f) {
			t.Errorf("%s: recorded body of %d bytes is not the file", x.Request.Target, len(x.Response.Body))
		}
		if x.Flags != 0 || x.Conn.Protocol != session.ProtoH2 && x.Conn.Protocol != session.ProtoHTTP1 {
			t.Errorf("%s: flags %v protocol %v", x.Request.Target, x.Flags, x.Conn.Protocol)
		}
		h2[x.Conn.ID] = x.Conn.Protocol == session.ProtoH2
		if c, ok := byConn[x.Conn.ID]; ok && c != s.conn {
			t.Errorf("recorded connection %d went to nginx's connections %s and %s", x.Conn.ID, c, s.conn)
		}
		if id, ok := nginxConn[s.conn]; ok && id != x.Conn.ID {
			t.Errorf("nginx's connection %s served recorded connections %d and %d", s.conn, id, x.Conn.ID)
		}
		byConn[x.Conn.ID], nginxConn[s.conn] = s.conn, x.Conn.ID
	}
	var h2Conns int
	for _, yes := range h2 {
		if yes {
			h2Conns++
		}
	}
	st := r.p.Stats()
	alpn := map[string]uint64{}
	for k, v := range st.TLS {
		alpn[k[strings.LastIndex(k, " ")+1:]] += v
	}
	if len(byConn) != 4 || h2Conns != 2 || st.Protocols["h2"] != 2 || st.Protocols["h1"] != 2 ||
		alpn["alpn=h2"] != 2 || alpn["alpn=http/1.1"] != 2 || st.Streams != 8 || len(st.Unsupported) != 0 {
		t.Errorf("%d connections recorded (%d h2); stats %+v", len(byConn), h2Conns, st)
	}
}
