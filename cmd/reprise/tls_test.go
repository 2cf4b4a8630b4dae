package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// TestReplayTLSVerifies: an https target whose certificate the replay
// does not trust is refused before any request, with an error naming
// --ca and --insecure; --ca with its certificate, --sni with a name it
// was issued for, and --insecure by name let the replay through.
func TestReplayTLSVerifies(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.TLS.NegotiatedProtocol != "http/1.1" {
			w.WriteHeader(500)
		}
		hits.Add(1)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	rec := writeRecording(t, 3)
	tests := []struct {
		name     string
		args     []string
		code     int
		stderr   string
		wantHits int64
	}{
		// The system roots do not know the test's CA: refused, saying how.
		{"untrusted", nil, exitFailure, "--ca FILE", 0},
		// Its CA given: replayed over TLS, with http/1.1 by ALPN.
		{"ca", []string{"--ca", ca}, exitOK, "replay COMPLETED", 3},
		// Another name the certificate holds, sent as the SNI.
		{"sni", []string{"--ca", ca, "--sni", "example.com"}, exitOK, "replay COMPLETED", 3},
		// A name it does not hold: refused.
		{"wrong sni", []string{"--ca", ca, "--sni", "other.test"}, exitFailure, "--insecure", 0},
		// Skipping the check by name.
		{"insecure", []string{"--insecure"}, exitOK, "replay COMPLETED", 3},
		// A CA file that is not PEM is a usage error naming the flag.
		{"bad ca", []string{"--ca", rec}, exitUsage, "--ca", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			var stdout, stderr bytes.Buffer
			args := append([]string{"replay", rec, "--target", srv.URL, "--speed", "max"}, tt.args...)
			code := run(args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if hits.Load() != tt.wantHits {
				t.Errorf("target got %d requests, want %d", hits.Load(), tt.wantHits)
			}
			if tt.code == exitFailure && !strings.Contains(stderr.String(), "--insecure") {
				t.Errorf("refusal does not name --insecure: %s", stderr.String())
			}
		})
	}
}

// runListening runs a verb that listens ('reprise proxy', 'reprise
// shadow': args begin with it) until the returned stop is called, which
// gives its exit code, stdout and stderr.
func runListening(t *testing.T, args ...string) (stop func() (int, string, string), stderr *testkit.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout testkit.SyncBuffer
	stderr = &testkit.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		root := newRootCmd(&stdout, stderr)
		root.SetArgs(args)
		err := root.ExecuteContext(ctx)
		if err != nil {
			fmt.Fprintln(stderr, err)
		}
		done <- exitCode(err)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("proxy did not start: %s", stderr.String())
		}
		select {
		case code := <-done:
			t.Fatalf("proxy exited %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	var once bool
	var code int
	stop = func() (int, string, string) {
		if !once {
			once = true
			cancel()
			code = <-done
		}
		return code, stdout.String(), stderr.String()
	}
	t.Cleanup(func() { stop() })
	return stop, stderr
}

// pemClient is an HTTP client trusting only the certificates in file,
// offering h2 and http/1.1 by ALPN as browsers do.
func pemClient(t *testing.T, file string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", file)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
	}}
}

// TestProxyTLSSelfSigned: 'reprise proxy --tls-self-signed' prints its
// fingerprint, writes its certificate for clients, serves them over TLS
// with HTTP/1.1, verifies an https upstream by --upstream-ca, and counts
// each connection's TLS parameters in the summary and the metadata.
func TestProxyTLSSelfSigned(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	defer up.Close()
	dir := t.TempDir()
	upCA := filepath.Join(dir, "up.pem")
	os.WriteFile(upCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600)
	addr, certOut, out := testkit.FreeAddr(t), filepath.Join(dir, "proxy.pem"), filepath.Join(dir, "rec.rpz")
	stop, _ := runListening(t, "proxy", "--listen", addr, "--upstream", up.URL, "--upstream-ca", upCA, "-o", out, "--json",
		"--tls-self-signed", "--tls-host", "shop.test", "--tls-cert-out", certOut)
	cl := pemClient(t, certOut)
	for _, p := range []string{"/a", "/b"} {
		resp, err := cl.Get("https://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello "+p || resp.Proto != "HTTP/1.1" {
			t.Fatalf("got %s %q", resp.Proto, b)
		}
	}
	cl.CloseIdleConnections()
	code, stdout, stderr := stop()
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "SHA-256 fingerprint ") || !strings.Contains(stderr, "shop.test") {
		t.Errorf("no fingerprint in %s", stderr)
	}
	var sum proxy.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Exchanges != 2 || !sum.ListenTLS || sum.Insecure || len(sum.TLS) != 1 {
		t.Fatalf("summary %+v", sum)
	}
	for kind, n := range sum.TLS { // one connection, TLS 1.3 by address
		if n != 1 || !strings.HasPrefix(kind, "TLS 1.3 ") || !strings.HasSuffix(kind, " alpn=http/1.1") || strings.Contains(kind, "sni=") {
			t.Fatalf("TLS counted %v", sum.TLS)
		}
	}
}

// TestProxyTLSFlagErrors: TLS flags that do not go together are usage
// errors that say what to do.
func TestProxyTLSFlagErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "r.rpz")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls-cert", "c.pem"}, "--tls-key"},
		{"self-signed and cert", []string{"--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "drop --tls-cert"},
		{"host without self-signed", []string{"--tls-host", "a.test"}, "--tls-self-signed"},
		{"missing cert file", []string{"--tls-cert", filepath.Join(dir, "c.pem"), "--tls-key", filepath.Join(dir, "k.pem")}, "--tls-cert"},
		{"ca for http upstream", []string{"--upstream-ca", "ca.pem"}, "https:// upstream"},
		{"insecure for http upstream", []string{"--insecure"}, "https:// upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"proxy", "--listen", testkit.FreeAddr(t), "--upstream", "http://127.0.0.1:1", "-o", out}, tt.args...)
			if code := run(args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	args := []string{"shadow", "--iface", "lo", "--port", "80", "--shadow", "http://127.0.0.1:1", "--tls-self-signed"}
	if code := run(args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "proxy mode") {
		t.Fatalf("shadow live mode with TLS flags: exit %d; stderr:\n%s", code, stderr.String())
	}
}

// TestShadowTLS: 'reprise shadow' in proxy mode takes the proxy's TLS
// flags: clients speak TLS to it, the upstream's certificate goes
// unchecked only by --upstream-insecure (loud at start and in the
// summary), the mirror still reaches the shadow, and the recording counts
// the terminated connections. 'reprise proxy --shadow' carries the flags
// over.
func TestShadowTLS(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	var mirrored atomic.Int64
	sh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mirrored.Add(1)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer sh.Close()
	for _, verb := range [][]string{{"shadow", "--upstream-insecure"}, {"proxy", "--insecure"}} {
		t.Run(verb[0], func(t *testing.T) {
			mirrored.Store(0)
			dir := t.TempDir()
			addr, certOut, out := testkit.FreeAddr(t), filepath.Join(dir, "proxy.pem"), filepath.Join(dir, "live.rpz")
			stop, _ := runListening(t, verb[0], verb[1], "--listen", addr, "--upstream", up.URL, "--shadow", sh.URL,
				"-o", out, "--tls-self-signed", "--tls-cert-out", certOut)
			cl := pemClient(t, certOut)
			for range 3 {
				resp := testkit.Send(t, cl, testkit.NewRequest(t, "GET", "https://"+addr+"/items", ""))
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			cl.CloseIdleConnections()
			code, _, stderr := stop()
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if strings.Count(stderr, "WARNING: "+verb[1]+": the upstream's TLS certificate was NOT checked") != 2 || !strings.Contains(stderr, "SHA-256 fingerprint") {
				t.Errorf("no fingerprint, or not loud about %s: %s", verb[1], stderr)
			}
			if mirrored.Load() < 3 { // and some twice, to learn the noise
				t.Errorf("shadow got %d requests, want at least 3", mirrored.Load())
			}
			r, err := session.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var n uint64
			for _, v := range r.Metadata()[0].Counters.TLS {
				n += v
			}
			if n != 1 {
				t.Errorf("metadata TLS %v, want one connection", r.Metadata()[0].Counters.TLS)
			}
		})
	}
}
