package capture

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// writeTestCert writes a throwaway ECDSA certificate for host and its key
// as PEM files in dir.
func writeTestCert(t *testing.T, dir, host string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return testkit.WriteKeyPair(t, dir, "cert", tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
}

// nginxShop is nginx serving three files over TLS 1.2 and 1.3 with a
// certificate for shop.test the test made, logging each request with its
// status, size and TLS parameters.
type nginxShop struct {
	dir, cert, addr, port string
	files                 map[string][]byte
}

// shopFiles writes the three files the shop serves in dir/www.
func shopFiles(t *testing.T, dir string) (string, map[string][]byte) {
	t.Helper()
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"a.txt":  bytes.Repeat([]byte("a line of text\n"), 300),
		"b.json": bytes.Repeat([]byte(`{"id":1,"name":"tea","price":3.5},`), 1200),
		"c.bin":  func() []byte { b := make([]byte, 100_000); rand.Read(b); return b }(),
	}
	for name, b := range files {
		os.WriteFile(filepath.Join(www, name), b, 0o644)
	}
	return www, files
}

// startNginxShop starts it; listen holds the listen parameters after the
// address ("ssl", or "ssl http2": the form nginx 1.22, Debian 12's, reads,
// which later versions still accept with a warning).
func startNginxShop(t *testing.T, listen string) *nginxShop {
	t.Helper()
	dir := t.TempDir()
	cert, key := writeTestCert(t, dir, "shop.test")
	www, files := shopFiles(t, dir)
	addr := testkit.FreeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	testkit.StartNginx(t, dir, addr, fmt.Sprintf(`  server {
    listen %s %s;
    server_name shop.test;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
    root %s;
  }`, addr, listen, cert, key, www), "$request $status $body_bytes_sent $ssl_protocol $ssl_cipher")
	return &nginxShop{dir: dir, cert: cert, addr: addr, port: port, files: files}
}

// curl fetches the three files and a missing one with curl on one
// connection per run, the TLS settings of each run after proto (a curl
// flag such as --http1.1 or --http2), logging keys with SSLKEYLOGFILE.
func (n *nginxShop) curl(t *testing.T, curl, proto, keylog string, runs [][]string) {
	t.Helper()
	base := "https://shop.test:" + n.port + "/"
	for _, r := range runs {
		args := append([]string{"-sS", proto, "--cacert", n.cert, "--resolve", "shop.test:" + n.port + ":127.0.0.1"}, r...)
		for _, f := range []string{"a.txt", "b.json", "c.bin", "missing"} {
			args = append(args, base+f, "-o", "/dev/null")
		}
		c := exec.Command(curl, args...)
		c.Env = append(os.Environ(), "SSLKEYLOGFILE="+keylog)
		if msg, err := c.CombinedOutput(); err != nil {
			t.Fatalf("curl %v: %v: %s", r, err, msg)
		}
	}
}

// check wants every request nginx logged out of the pcap and the key log,
// with its status and the served file byte for byte, on protocol proto,
// from conns connections all decrypted; and without the key log, the
// connections counted as "no keys" with their SNI.
func (n *nginxShop) check(t *testing.T, path, keylog string, proto session.Protocol, conns int) {
	t.Helper()
	logged, err := os.ReadFile(filepath.Join(n.dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(logged)), "\n") {
		f := strings.Fields(l) // GET /a.txt HTTP/1.1 200 4500 TLSv1.3 TLS_AES_128_GCM_SHA256
		want = append(want, strings.Join(f[:5], " "))
	}
	got, cnt := collectFile(t, path, WithKeyLog(loadKeyLog(t, keylog)))
	var lines []string
	for _, x := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s %d %d", x.Request.Method, x.Request.Target, x.Request.Proto, x.Response.Status, len(x.Response.Body)))
		name := strings.TrimPrefix(x.Request.Target, "/")
		if b, ok := n.files[name]; ok && (x.Response.Status != 200 || !bytes.Equal(x.Response.Body, b)) {
			t.Errorf("%s: status %d, body of %d bytes, not the file served", name, x.Response.Status, len(x.Response.Body))
		}
		if x.Flags != 0 {
			t.Errorf("%s: flags %s", x.Request.Target, flagNames(x.Flags))
		}
		if x.Conn.Protocol != proto {
			t.Errorf("%s: protocol %v, want %v", x.Request.Target, x.Conn.Protocol, proto)
		}
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("exchanges:\n%s\nnginx logged:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	var decrypted uint64
	for _, n := range cnt.TLS {
		decrypted += n
	}
	if decrypted != uint64(conns) || len(cnt.Unsupported) != 0 {
		t.Errorf("decrypted %d of %d connections: %v; unsupported %v", decrypted, conns, cnt.TLS, cnt.Unsupported)
	}
	t.Logf("tls: %v", cnt.TLS)

	got, cnt = collectFile(t, path)
	if len(got) != 0 || cnt.Unsupported["tls no keys sni=shop.test"] != uint64(conns) {
		t.Errorf("without keys: %d exchanges, unsupported %v", len(got), cnt.Unsupported)
	}
}

// TestTLSNginxCurl is the acceptance with Debian's programs:
// curl with SSLKEYLOGFILE against nginx serving files over TLS 1.2 and
// 1.3 with a certificate the test makes, captured by tcpdump. Every
// request nginx logged comes out of the pcap and the key log with its
// status and the served file byte for byte; without the key log the
// connections are counted as "no keys" with their SNI.
func TestTLSNginxCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	shop := startNginxShop(t, "ssl")
	path, stop := startTcpdump(t, "lo", shop.addr)
	keylog := filepath.Join(shop.dir, "keys.log")
	runs := [][]string{
		{"--tlsv1.3", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256"},
		{"--tlsv1.3", "--tls13-ciphers", "TLS_AES_256_GCM_SHA384"},
		{"--tlsv1.3", "--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"},
		{"--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"},
		{"--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"},
		{"--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305"},
	}
	shop.curl(t, curl, "--http1.1", keylog, runs)
	stop()
	shop.check(t, path, keylog, session.ProtoHTTP1, len(runs))
}

// TestTLSNginxCurlH2 is the same with HTTP/2: curl --http2 against nginx
// with http2 on its TLS listener, ALPN h2. Every request nginx logged
// comes out as an h2 exchange, the served file byte for byte.
func TestTLSNginxCurlH2(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	shop := startNginxShop(t, "ssl http2")
	path, stop := startTcpdump(t, "lo", shop.addr)
	keylog := filepath.Join(shop.dir, "keys.log")
	runs := [][]string{
		{"--tlsv1.3", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256"},
		{"--tlsv1.3", "--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"},
		{"--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"},
	}
	shop.curl(t, curl, "--http2", keylog, runs)
	stop()
	shop.check(t, path, keylog, session.ProtoH2, len(runs))
}

// sClient runs openssl s_client against addr as shop.test over TLS 1.3
// with args, sending stdin after the handshake; with stdin empty it ends
// after the handshake, else it reads until nginx closes. It returns what
// s_client printed.
func sClient(t *testing.T, openssl, addr, stdin string, args ...string) string {
	t.Helper()
	args = append([]string{"s_client", "-connect", addr, "-servername", "shop.test", "-tls1_3"}, args...)
	if stdin != "" {
		args = append(args, "-ign_eof")
	}
	cmd := exec.Command(openssl, args...)
	cmd.Stdin = strings.NewReader(stdin)
	done := make(chan struct{})
	timer := time.AfterFunc(10*time.Second, func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	close(done)
	if err != nil {
		t.Fatalf("openssl %v: %v: %s", args, err, out)
	}
	return string(out)
}

// getClose is an HTTP/1.1 GET of shop.test's path; close asks nginx to
// close the connection after answering it.
func getClose(path string, close bool) string {
	s := "GET " + path + " HTTP/1.1\r\nHost: shop.test\r\n"
	if close {
		s += "Connection: close\r\n"
	}
	return s + "\r\n"
}

// TestTLSNginxEarlyData: a TLS 1.3 client resumes a session and sends its
// first request as 0-RTT data, under CLIENT_EARLY_TRAFFIC_SECRET, before
// the handshake ends. With OpenSSL's s_client (Debian's openssl: Go's
// crypto/tls never sends 0-RTT) against nginx with ssl_early_data on,
// captured by tcpdump: the request nginx read from the 0-RTT data comes
// out first on its connection, and the one sent after the handshake
// second, each with the file served byte for byte. 0-RTT data that nginx
// rejected (the session came from another server, whose ticket it cannot
// read) was never served, and is not recorded either.
func TestTLSNginxEarlyData(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	cert, key := writeTestCert(t, dir, "shop.test")
	www, files := shopFiles(t, dir)
	addr, other := testkit.FreeAddr(t), testkit.FreeAddr(t)
	server := `  server {
    listen %s ssl;
    server_name shop.test;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.3;
    ssl_early_data on;
    root %s;
  }
`
	testkit.StartNginx(t, dir, addr, fmt.Sprintf(server, addr, cert, key, www)+fmt.Sprintf(server, other, cert, key, www),
		"$server_port $request $status $body_bytes_sent")
	path, stop := startTcpdump(t, "lo", addr)
	keylog, sess, otherSess := filepath.Join(dir, "keys.log"), filepath.Join(dir, "sess.pem"), filepath.Join(dir, "other.pem")
	early := filepath.Join(dir, "early.txt")

	// A full handshake; its session ticket is kept.
	sClient(t, openssl, addr, getClose("/a.txt", false)+getClose("/b.json", true), "-sess_out", sess, "-keylogfile", keylog)
	// Resumed, the first request in 0-RTT data, the second after the
	// handshake.
	os.WriteFile(early, []byte(getClose("/c.bin", false)), 0o644)
	if out := sClient(t, openssl, addr, getClose("/a.txt", true), "-sess_in", sess, "-early_data", early, "-keylogfile", keylog); !strings.Contains(out, "Early data was accepted") {
		t.Fatalf("nginx did not accept 0-RTT data:\n%s", out)
	}
	// A session of the other server (not captured), offered here.
	sClient(t, openssl, other, getClose("/missing", true), "-sess_out", otherSess)
	os.WriteFile(early, []byte(getClose("/b.json", true)), 0o644)
	if out := sClient(t, openssl, addr, "", "-sess_in", otherSess, "-early_data", early, "-keylogfile", keylog); !strings.Contains(out, "Early data was rejected") {
		t.Fatalf("nginx did not reject 0-RTT data under another server's session:\n%s", out)
	}
	stop()

	logged, err := os.ReadFile(filepath.Join(dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(logged)), "\n") {
		if p, rest, _ := strings.Cut(l, " "); p == port {
			want = append(want, rest) // GET /c.bin HTTP/1.1 200 100000
		}
	}
	got, cnt := collectFile(t, path, WithKeyLog(loadKeyLog(t, keylog)))
	var lines []string
	conns := map[uint64]int{}
	for _, x := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s %d %d", x.Request.Method, x.Request.Target, x.Request.Proto, x.Response.Status, len(x.Response.Body)))
		if b, ok := files[strings.TrimPrefix(x.Request.Target, "/")]; ok && !bytes.Equal(x.Response.Body, b) {
			t.Errorf("%s: body of %d bytes, not the file served", x.Request.Target, len(x.Response.Body))
		}
		if x.Flags != 0 {
			t.Errorf("%s: flags %s", x.Request.Target, flagNames(x.Flags))
		}
		conns[x.Conn.ID]++
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") || len(conns) != 2 {
		t.Errorf("exchanges on %d connections:\n%s\nnginx served:\n%s", len(conns), strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Three connections read, the rejected one among them: a handshake,
	// then nothing the server read.
	if cnt.TLS["TLS 1.3 TLS_AES_256_GCM_SHA384 sni=shop.test"]+cnt.TLS["TLS 1.3 TLS_AES_128_GCM_SHA256 sni=shop.test"] != 3 || len(cnt.Unsupported) != 0 {
		t.Errorf("tls %v; unsupported %v", cnt.TLS, cnt.Unsupported)
	}
}
