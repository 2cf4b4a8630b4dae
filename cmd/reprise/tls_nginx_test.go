package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// httpsNginx is Debian's nginx serving files over TLS on loopback with a
// throwaway certificate (for 127.0.0.1 and nginx.test), its access log
// one "$request $status $body_bytes_sent" line per request.
type httpsNginx struct {
	url, ca, log string
	files        map[string][]byte
}

// startHTTPSNginx starts nginx for one test, or skips it with a message
// when nginx is not installed or cannot start (testkit.StartNginx).
func startHTTPSNginx(t *testing.T) *httpsNginx {
	t.Helper()
	dir := t.TempDir()
	cert, err := proxy.SelfSigned("nginx.test")
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	n := &httpsNginx{ca: filepath.Join(dir, "nginx.pem"), log: filepath.Join(dir, "access.log"), files: map[string][]byte{
		"a.txt":  bytes.Repeat([]byte("a line of text\n"), 300),
		"b.json": bytes.Repeat([]byte(`{"id":1,"name":"tea","price":3.5},`), 1200),
		"c.bin":  func() []byte { b := make([]byte, 100_000); rand.Read(b); return b }(),
	}}
	keyPath := filepath.Join(dir, "nginx.key")
	os.WriteFile(n.ca, proxy.CertPEM(cert), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	www := filepath.Join(dir, "www")
	os.MkdirAll(www, 0o755)
	for name, b := range n.files {
		os.WriteFile(filepath.Join(www, name), b, 0o644)
	}
	addr := testkit.FreeAddr(t)
	testkit.StartNginx(t, dir, addr, fmt.Sprintf(`  server {
    listen %s ssl;
    server_name nginx.test;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    root %s;
  }`, addr, n.ca, keyPath, www), "$request $status $body_bytes_sent")
	n.url = "https://" + addr
	return n
}

// logged returns nginx's access log lines from the skip-th on, waiting a
// little for lines still being written.
func (n *httpsNginx) logged(t *testing.T, skip, want int) []string {
	t.Helper()
	var lines []string
	for i := 0; i < 100; i++ {
		b, _ := os.ReadFile(n.log)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) == 0 {
			lines = nil
		}
		if len(lines)-skip >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(lines) < skip {
		return nil
	}
	return lines[skip:]
}

// TestProxyTLSNginx is the proxy acceptance with Debian's
// programs: curl (--cacert) and a Go client talk TLS to 'reprise proxy
// --tls-self-signed', which forwards to nginx over https verified by
// --upstream-ca; the recording holds what nginx served, byte for byte, and
// counts each connection's TLS parameters. Then the recording is replayed
// against nginx: refused without --ca (naming --ca and --insecure), sent
// with it.
func TestProxyTLSNginx(t *testing.T) {
	ng := startHTTPSNginx(t)
	dir := t.TempDir()
	addr, certOut, out := testkit.FreeAddr(t), filepath.Join(dir, "proxy.pem"), filepath.Join(dir, "rec.rpz")
	stop, _ := runListening(t, "proxy", "--listen", addr, "--upstream", ng.url, "--upstream-ca", ng.ca, "-o", out, "--json",
		"--tls-self-signed", "--tls-cert-out", certOut)
	port := addr[strings.LastIndex(addr, ":")+1:]
	paths := []string{"/a.txt", "/b.json", "/c.bin", "/missing"}
	clients := 0
	if curl, err := exec.LookPath("curl"); err == nil {
		// curl offers h2 and http/1.1; the proxy picks http/1.1. One
		// connection by address (no SNI), one by the name localhost, one
		// over TLS 1.2.
		for i, base := range []string{"https://" + addr, "https://localhost:" + port, "https://" + addr} {
			args := []string{"-sS", "--cacert", certOut}
			if i == 2 {
				args = append(args, "--tls-max", "1.2")
			}
			for _, p := range paths {
				args = append(args, base+p, "-o", "/dev/null")
			}
			if msg, err := exec.Command(curl, args...).CombinedOutput(); err != nil {
				t.Fatalf("curl: %v: %s", err, msg)
			}
			clients++
		}
	} else {
		t.Log("curl not installed: only the Go client goes through the proxy")
	}
	cl := pemClient(t, certOut)
	for _, p := range paths {
		resp, err := cl.Get("https://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want, ok := ng.files[p[1:]]; ok && !bytes.Equal(b, want) || resp.Proto != "HTTP/1.1" {
			t.Fatalf("%s: %s, %d bytes", p, resp.Proto, len(b))
		}
	}
	cl.CloseIdleConnections()
	clients++
	code, stdout, stderr := stop()
	if code != exitOK {
		t.Fatalf("proxy exit %d: %s", code, stderr)
	}
	var sum proxy.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}

	// The recording is what nginx served.
	served := ng.logged(t, 0, clients*len(paths))
	r, err := session.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	xs := shoptest.Collect(t, r)
	md := r.Metadata()
	r.Close()
	var recorded []string
	for _, x := range xs {
		recorded = append(recorded, fmt.Sprintf("%s %s %s %d %d", x.Request.Method, x.Request.Target, x.Request.Proto, x.Response.Status, x.Response.BodySize))
		if want, ok := ng.files[x.Request.Target[1:]]; ok && (x.Response.Status != 200 || !bytes.Equal(x.Response.Body, want)) {
			t.Errorf("%s: recorded %d with %d bytes, not the file served", x.Request.Target, x.Response.Status, len(x.Response.Body))
		}
		if x.Flags != 0 {
			t.Errorf("%s: flags %v", x.Request.Target, x.Flags)
		}
	}
	slices.Sort(served)
	slices.Sort(recorded)
	if strings.Join(served, "\n") != strings.Join(recorded, "\n") {
		t.Fatalf("nginx served:\n%s\nrecorded:\n%s", strings.Join(served, "\n"), strings.Join(recorded, "\n"))
	}
	t.Logf("%d exchanges from %d client connections; TLS %v", len(xs), clients, md[0].Counters.TLS)
	var conns, byName, tls12 uint64
	for kind, n := range md[0].Counters.TLS {
		if !strings.HasSuffix(kind, " alpn=http/1.1") || !strings.HasPrefix(kind, "TLS 1.3 ") && !strings.HasPrefix(kind, "TLS 1.2 ") {
			t.Errorf("TLS kind %q", kind)
		}
		conns += n
		if strings.HasSuffix(kind, " sni=localhost alpn=http/1.1") {
			byName += n
		}
		if strings.HasPrefix(kind, "TLS 1.2 ") {
			tls12 += n
		}
	}
	if conns != uint64(clients) || sum.Connections != uint64(clients) || len(sum.TLS) == 0 {
		t.Errorf("TLS counted %v (summary %v) for %d client connections", md[0].Counters.TLS, sum.TLS, clients)
	}
	if clients == 4 && (byName != 1 || tls12 != 1) {
		t.Errorf("no connection by the name localhost, or over TLS 1.2, in %v", md[0].Counters.TLS)
	}

	// Replayed against nginx: refused without its CA, sent with it.
	before := len(served)
	var rout, rerr bytes.Buffer
	code = run([]string{"replay", out, "--target", ng.url, "--speed", "max", "--allow-original-host"}, &rout, &rerr)
	if code == exitOK || !strings.Contains(rerr.String(), "--ca") || !strings.Contains(rerr.String(), "--insecure") {
		t.Fatalf("replay without --ca: exit %d: %s", code, rerr.String())
	}
	rerr.Reset()
	code = run([]string{"replay", out, "--target", ng.url, "--speed", "max", "--allow-original-host", "--ca", ng.ca, "--sni", "nginx.test"}, &rout, &rerr)
	if code != exitOK || !strings.Contains(rerr.String(), "replay COMPLETED") {
		t.Fatalf("replay with --ca: exit %d: %s", code, rerr.String())
	}
	replayed := ng.logged(t, before, len(xs))
	slices.Sort(replayed)
	if strings.Join(replayed, "\n") != strings.Join(served, "\n") {
		t.Fatalf("replay: nginx served\n%s\nwant\n%s", strings.Join(replayed, "\n"), strings.Join(served, "\n"))
	}
}
