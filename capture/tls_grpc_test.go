package capture

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/reprise-tool/reprise/capture/httpstream"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/fixtures/grpcshop"
	"github.com/reprise-tool/reprise/session"
)

// TestTLSGRPCTcpdump runs the gRPC shop behind TLS (ALPN h2, the server's
// key log written), drives it from a TLS 1.3 and a TLS 1.2 client,
// captures it with tcpdump and checks that every call the server counted
// comes out of the pcap and the key log as an h2 stream with its method,
// messages and grpc-status; without the key log, both connections are
// counted as "no keys" with their SNI.
func TestTLSGRPCTcpdump(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := writeTestCert(t, dir, "shop.test")
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	klPath := filepath.Join(dir, "keys.log")
	kf, err := os.Create(klPath)
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The shop's server speaks plain HTTP/2 over the TLS listener: its
	// counting interceptors stay, and TLS is the listener's.
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}, KeyLogWriter: kf})
	srv := grpcshop.NewServer()
	g := srv.NewGRPCServer()
	go g.Serve(tln)
	defer g.Stop()
	addr := ln.Addr().String()
	path, stop := startTcpdump(t, "lo", addr)

	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(certPath)
	pool.AppendCertsFromPEM(pem)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	versions := []uint16{tls.VersionTLS13, tls.VersionTLS12}
	var wg sync.WaitGroup
	errs := make(chan error, len(versions))
	for _, v := range versions {
		creds := credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "shop.test", MaxVersion: v})
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- grpcshop.Drive(ctx, &grpcshop.Client{Conn: conn})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	stop()

	src, err := pcapfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, cnt := collect(t, src, WithKeyLog(loadKeyLog(t, klPath)))
	src.Close()
	want := srv.Counts()
	if fig := figuresOf(got); !reflect.DeepEqual(fig, figuresOfCounts(want)) {
		t.Errorf("from the capture:\n %+v\nthe server counted:\n %+v", fig, want)
	}
	for _, x := range got {
		if x.Conn.Protocol != session.ProtoH2 || x.Stream == nil || x.Flags != 0 {
			t.Errorf("stream %+v flags %v proto %v", x.Stream, x.Flags, x.Conn.Protocol)
		}
	}
	for k, v := range cnt.Unsupported {
		if k != httpstream.KindOther {
			t.Errorf("unsupported %s: %d", k, v)
		}
	}
	var decrypted uint64
	for kind, n := range cnt.TLS {
		decrypted += n
		if !strings.HasSuffix(kind, "sni=shop.test alpn=h2") {
			t.Errorf("tls kind %q", kind)
		}
	}
	if decrypted != uint64(len(versions)) {
		t.Errorf("decrypted %d connections, want %d: %v", decrypted, len(versions), cnt.TLS)
	}
	t.Logf("%d streams; tls %v", len(got), cnt.TLS)

	src, err = pcapfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, cnt = collect(t, src)
	if len(got) != 0 || cnt.Unsupported["tls no keys sni=shop.test"] != uint64(len(versions)) {
		t.Errorf("without keys: %d exchanges, unsupported %v", len(got), cnt.Unsupported)
	}
}
