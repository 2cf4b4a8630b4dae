package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/grpcshop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// TestProxyGRPC: 'reprise proxy' in front of the gRPC shop, driven by a
// grpc-go client over h2c: the summary counts the connection as h2c with
// its streams, and the recording holds every call the server counted,
// per method, as h2c streams with their grpc-status.
func TestProxyGRPC(t *testing.T) {
	srv := grpcshop.NewServer()
	upAddr, stopServer, err := srv.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopServer()
	addr := testkit.FreeAddr(t)
	out := filepath.Join(t.TempDir(), "grpc.rpz")
	stop, _ := runListening(t, "proxy", "--listen", addr, "--upstream", "http://"+upAddr, "-o", out, "--json")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := grpcshop.Drive(ctx, &grpcshop.Client{Conn: conn}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	code, stdout, stderr := stop()
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum proxy.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("summary %q: %v", stdout, err)
	}
	calls := srv.Counts().Calls
	total := 0
	for _, n := range calls {
		total += n
	}
	if sum.Protocols["h2c"] != 1 || len(sum.Protocols) != 1 || sum.Streams != uint64(total) || sum.Exchanges != uint64(total) {
		t.Fatalf("summary %+v, server calls %v", sum, calls)
	}
	r, err := session.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := map[string]int{}
	for _, x := range shoptest.Collect(t, r) {
		if x.Conn.Protocol != session.ProtoH2C || x.Stream == nil || x.Stream.GRPC == nil || !x.Stream.GRPC.HasStatus {
			t.Errorf("recorded %s as %v %+v", x.Request.Target, x.Conn.Protocol, x.Stream)
			continue
		}
		got[x.GRPCMethod()]++
	}
	if fmt.Sprint(got) != fmt.Sprint(calls) {
		t.Errorf("recorded calls %v, server's %v", got, calls)
	}
}

// TestProxySummaryProtocols: the text summary counts connections by
// protocol and HTTP/2 streams.
func TestProxySummaryProtocols(t *testing.T) {
	var b strings.Builder
	proxySummary(&b, proxy.Summary{Protocols: map[string]uint64{"h1": 2, "h2c": 1, "h2": 3}, Streams: 40})
	if want := "  connections by protocol: h1 2, h2 3, h2c 1; HTTP/2 streams 40\n"; !strings.Contains(b.String(), want) {
		t.Errorf("summary %q lacks %q", b.String(), want)
	}
}

// TestProxyH2TLSCurl: curl --http2 trusts 'reprise proxy --tls-self-signed'
// by the certificate --tls-cert-out wrote, gets h2 by ALPN, and the proxy
// speaks h2 to a Go https upstream verified by --upstream-ca; the summary
// counts the connection as h2 with its TLS parameters, and the recording
// holds the stream as h2.
func TestProxyH2TLSCurl(t *testing.T) {
	if out, err := exec.Command("curl", "--version").Output(); err != nil || !strings.Contains(string(out), "nghttp2") {
		t.Skip("needs curl with nghttp2 (Debian's curl)")
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	dir := t.TempDir()
	upCA := filepath.Join(dir, "up.pem")
	os.WriteFile(upCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600)
	addr, certOut, out := testkit.FreeAddr(t), filepath.Join(dir, "proxy.pem"), filepath.Join(dir, "rec.rpz")
	stop, _ := runListening(t, "proxy", "--listen", addr, "--upstream", up.URL, "--upstream-ca", upCA, "-o", out, "--json",
		"--tls-self-signed", "--tls-cert-out", certOut)
	got, err := exec.Command("curl", "-sS", "--max-time", "10", "--http2", "--cacert", certOut, "-w", " %{http_version}", "https://"+addr+"/h2").CombinedOutput()
	if err != nil || string(got) != "HTTP/2.0 /h2 2" {
		t.Fatalf("curl: %v: %q", err, got)
	}
	code, stdout, stderr := stop()
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum proxy.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Exchanges != 1 || sum.Protocols["h2"] != 1 || sum.Streams != 1 || len(sum.TLS) != 1 {
		t.Fatalf("summary %+v", sum)
	}
	for kind := range sum.TLS {
		if !strings.HasSuffix(kind, " alpn=h2") {
			t.Errorf("TLS counted %v", sum.TLS)
		}
	}
	r, err := session.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	xs := shoptest.Collect(t, r)
	if len(xs) != 1 || xs[0].Conn.Protocol != session.ProtoH2 || string(xs[0].Response.Body) != "HTTP/2.0 /h2" {
		t.Fatalf("recorded %+v", xs)
	}
}
