package capture

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/capture/tlsdecrypt"
	"github.com/reprise-tool/reprise/session"
)

// TestTLSH2Tcpdump captures HTTP/2 over TLS 1.3 and 1.2 between Go's
// server (ALPN h2) and Go's HTTP/2 client with tcpdump on lo, and checks
// that the pcap and the server's key log give back every exchange the
// server served as an h2 exchange, bodies exact; and that without the key
// log the connections are counted as "no keys" with their SNI. With
// -update it refreshes testdata/tls-h2-lo.*.
func TestTLSH2Tcpdump(t *testing.T) {
	srv, served, klPath := keyLogServer(t, true)
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig
	path, stop := startTcpdump(t, "lo", srv.Listener.Addr().String())
	cases := []struct {
		tag     string
		version uint16
		suite   uint16
	}{
		{"tls13", tls.VersionTLS13, 0},
		{"tls12-chacha20", tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
	}
	for _, c := range cases {
		tlsClientRequests(t, srv.URL, roots, c.version, c.suite, c.tag, true)
	}
	stop()
	want := served.sorted()
	checkTLSCapture(t, path, []string{klPath}, want, len(cases))
	checkH2Protocol(t, path, klPath, len(want))
	if *update {
		writeTLSFixture(t, "tls-h2-lo", path, []string{klPath}, want)
	}
}

// TestTLSH2Fixture reads the committed capture of HTTP/2 over TLS (see
// testdata/README.md) with and without its key log.
func TestTLSH2Fixture(t *testing.T) {
	pcap, keys, want := readTLSFixture(t, "tls-h2-lo")
	checkTLSCapture(t, pcap, []string{keys}, want, 2)
	checkH2Protocol(t, pcap, keys, len(want))
}

// checkH2Protocol wants n exchanges from the pcap read with the key log,
// each recorded as HTTP/2 over TLS (h2, not h2c) with a stream.
func checkH2Protocol(t *testing.T, path, keys string, n int) {
	t.Helper()
	k := loadKeyLog(t, keys)
	src, err := pcapfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, cnt := collect(t, src, WithKeyLog(k))
	if len(got) != n {
		t.Errorf("%d exchanges, want %d", len(got), n)
	}
	for _, x := range got {
		if x.Conn.Protocol != session.ProtoH2 || x.Stream == nil || x.Request.Proto != "HTTP/2.0" {
			t.Errorf("%s %s: protocol %v, proto %q, stream %v", x.Request.Method, x.Request.Target, x.Conn.Protocol, x.Request.Proto, x.Stream)
		}
	}
	for kind := range cnt.TLS {
		if !strings.HasSuffix(kind, "alpn=h2") {
			t.Errorf("tls kind %q: want ALPN h2", kind)
		}
	}
}

// loadKeyLog reads the key logs at paths, failing on any bad line.
func loadKeyLog(t *testing.T, paths ...string) *tlsdecrypt.KeyLog {
	t.Helper()
	k := tlsdecrypt.NewKeyLog()
	for _, p := range paths {
		if err := k.AddFile(p); err != nil {
			t.Fatal(err)
		}
	}
	if st := k.Stats(); st.Bad != 0 {
		t.Fatalf("bad key log lines: %v", st.FirstBad)
	}
	return k
}
