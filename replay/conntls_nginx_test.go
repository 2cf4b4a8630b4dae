package replay

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// TestNginxTLSHandshakes replays five recorded connections, three HTTP/1
// and two HTTP/2, against Debian's nginx over TLS with a certificate the
// test made: the report's handshakes, resumed handshakes and ALPN are the
// ones nginx saw ($connection, $ssl_session_reused, $server_protocol in
// its log), and every handshake has a latency. The replay's HTTP/1 and
// HTTP/2 connections share one session cache, as a browser's do: every
// connection after the first resumes, h2 ones included.
func TestNginxTLSHandshakes(t *testing.T) {
	dir := t.TempDir()
	cert, err := proxy.SelfSigned("nginx.test")
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := testkit.WriteKeyPair(t, dir, "nginx", cert)
	addr := testkit.FreeAddr(t)
	testkit.StartNginx(t, dir, addr, fmt.Sprintf(`  server {
    listen %s ssl http2;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { return 200 "ok\n"; }
  }`, addr, certPath, keyPath), "$connection $ssl_session_reused $server_protocol $request_uri")
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)

	// One connection after the other, two requests each: each finds the
	// session tickets of the ones before in the cache.
	var exs []*session.Exchange
	for c := range 5 {
		for i := range 2 {
			at := float64(c*100 + i*5)
			x := rec("", "GET", fmt.Sprintf("/c%d/%d", c, i), at, at+1, connID(uint64(c+1)))
			if c >= 3 {
				h2Stream("", uint32(2*i+1))(x)
				x.Conn.Protocol = session.ProtoH2
			}
			exs = append(exs, x)
		}
	}
	rep := run(t, "https://"+addr, source(exs...), WithTLSConfig(&tls.Config{RootCAs: pool}), WithConnections(ConnectionsRecorded))
	if !rep.Completed || rep.Requests.Responses != 10 || rep.Connections == nil || rep.Connections.TLS == nil {
		t.Fatalf("completed %v, requests %+v, connections %+v", rep.Completed, rep.Requests, rep.Connections)
	}

	var lines []string
	for i := 0; i < 100; i++ {
		b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
		if lines = strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) >= 10 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	conns, reused, alpn := map[string]bool{}, 0, map[string]uint64{}
	for _, l := range lines {
		f := strings.Fields(l) // 3 r HTTP/2.0 /c3/0
		if len(f) != 4 {
			t.Fatalf("access log line %q", l)
		}
		if conns[f[0]] {
			continue
		}
		conns[f[0]] = true
		if f[1] == "r" {
			reused++
		}
		alpn[map[string]string{"HTTP/2.0": "h2", "HTTP/1.1": "http/1.1"}[f[2]]]++
	}
	tr := rep.Connections.TLS
	t.Logf("nginx: %d requests on %d connections, %d resumed; report: %+v", len(lines), len(conns), reused, *tr)
	if len(lines) != 10 || len(conns) != 5 || tr.Handshakes != 5 || tr.Failed != 0 || tr.Latency.Count != 5 || tr.Latency.P50 <= 0 {
		t.Errorf("nginx served %d requests on %d connections; report %+v", len(lines), len(conns), *tr)
	}
	if tr.Resumed != uint64(reused) || reused != 4 {
		t.Errorf("report says %d handshakes resumed, nginx %d (want 4)", tr.Resumed, reused)
	}
	if tr.ALPN["h2"] != alpn["h2"] || tr.ALPN["http/1.1"] != alpn["http/1.1"] || alpn["h2"] != 2 {
		t.Errorf("report ALPN %v, nginx %v", tr.ALPN, alpn)
	}
	var b strings.Builder
	rep.WriteSummary(&b)
	if want := fmt.Sprintf("tls          5 handshakes (%d resumed), p50 ", reused); !strings.Contains(b.String(), want) {
		t.Errorf("summary has no %q:\n%s", want, b.String())
	}
}
