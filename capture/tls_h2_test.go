package capture

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/http2"

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

// wireLog keeps what both ends of a connection wrote, in order: the
// ciphertext a capture would hold.
type wireLog struct {
	mu     sync.Mutex
	writes []wireWrite
}

type wireWrite struct {
	fromClient bool
	b          []byte
}

// wireConn logs what its side writes into a wireLog.
type wireConn struct {
	net.Conn
	log        *wireLog
	fromClient bool
}

func (c wireConn) Write(b []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writes = append(c.log.writes, wireWrite{c.fromClient, bytes.Clone(b)})
	c.log.mu.Unlock()
	return c.Conn.Write(b)
}

// TestTLSH2PriorKnowledge checks HTTP/2 over TLS is found by the client
// preface when ALPN named no protocol (a client and server that agreed on
// HTTP/2 beforehand): the exchange comes out as h2, bodies exact. The
// connection runs over a pipe and its ciphertext is laid into packets, so
// no root is needed.
func TestTLSH2PriorKnowledge(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil) // for its certificate
	srv.StartTLS()
	srvCert := srv.TLS.Certificates
	srv.Close()
	var keys bytes.Buffer
	var wire wireLog
	cp, sp := net.Pipe()
	defer cp.Close()
	defer sp.Close()
	sc := tls.Server(wireConn{sp, &wire, false}, &tls.Config{Certificates: srvCert, KeyLogWriter: &keys})
	cc := tls.Client(wireConn{cp, &wire, true}, &tls.Config{InsecureSkipVerify: true, ServerName: "example.com"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sc.Handshake(); err != nil {
			t.Error(err)
			return
		}
		(&http2.Server{}).ServeConn(sc, &http2.ServeConnOpts{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Write(append([]byte("got "), body...))
		})})
	}()
	if err := cc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if p := cc.ConnectionState().NegotiatedProtocol; p != "" {
		t.Fatalf("ALPN %q", p)
	}
	h2c, err := (&http2.Transport{}).NewClientConn(cc)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "https://example.com/prior", strings.NewReader(strings.Repeat("k", 5000)))
	resp, err := h2c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	h2c.Close()
	<-done

	tr := newTrace(layers.LinkTypeEthernet)
	c := tr.conn("10.0.0.1:40000", "10.0.0.2:443")
	c.handshake()
	for _, w := range wire.writes {
		c.send(w.fromClient, string(w.b))
	}
	c.fin(true)
	c.fin(false)
	k := tlsdecrypt.NewKeyLog()
	if err := k.Read("keys", &keys); err != nil {
		t.Fatal(err)
	}
	got, cnt := collect(t, &memSource{tr: tr}, WithKeyLog(k))
	if len(got) != 1 || got[0].Conn.Protocol != session.ProtoH2 || got[0].Request.Target != "/prior" ||
		string(got[0].Request.Body) != strings.Repeat("k", 5000) || !bytes.Equal(got[0].Response.Body, respBody) {
		for _, x := range got {
			t.Logf("%s", line(x))
		}
		t.Errorf("%d exchanges; counters %+v", len(got), cnt)
	}
	if cnt.TLS["TLS 1.3 TLS_AES_128_GCM_SHA256 sni=example.com"] != 1 {
		t.Errorf("tls %v: want one connection without ALPN", cnt.TLS)
	}
}
