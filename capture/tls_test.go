package capture

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/capture/tlsdecrypt"
)

// servedLog is what the TLS test server served: one line per exchange,
// "METHOD TARGET REQBODY -> RESPBODY".
type servedLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *servedLog) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		resp := fmt.Sprintf("%s %s got %d bytes", r.Method, r.URL.RequestURI(), len(body))
		if strings.HasPrefix(r.URL.Path, "/big") {
			resp = strings.Repeat(resp+";", 450) // more than one 16 KiB record
		}
		l.mu.Lock()
		l.lines = append(l.lines, exchangeLine(r.Method, r.URL.RequestURI(), body, []byte(resp)))
		l.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, resp)
	})
}

// sorted returns the lines served so far, sorted.
func (l *servedLog) sorted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(slices.Values(l.lines))
}

// keyLogServer starts Go's TLS server (httptest's certificate for
// example.com; HTTP/2 by ALPN when h2) logging what it serves, and writing
// its key log to klPath in a temporary directory.
func keyLogServer(t *testing.T, h2 bool) (srv *httptest.Server, served *servedLog, klPath string) {
	t.Helper()
	klPath = filepath.Join(t.TempDir(), "keys.log")
	kf, err := os.Create(klPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kf.Close() })
	served = &servedLog{}
	srv = httptest.NewUnstartedServer(served.handler())
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{KeyLogWriter: kf, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the knocks of waitCapturing
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, served, klPath
}

// exchangeLine names an exchange by its request and both bodies, bodies
// by length and a short prefix so mismatches print readably.
func exchangeLine(method, target string, req, resp []byte) string {
	return fmt.Sprintf("%s %s %d:%.20q -> %d:%q", method, target, len(req), req, len(resp), string(resp[:min(len(resp), 40)])) +
		fmt.Sprintf(" %x", fnv64(req)^fnv64(resp)<<1)
}

func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// tlsClientRequests makes requests on one keep-alive connection with the
// given client TLS settings: over HTTP/1.1 a GET, a POST and a GET of more
// than one TLS record; over HTTP/2 (ALPN h2) a GET, a POST and three PUTs
// at once, so their streams interleave.
func tlsClientRequests(t *testing.T, base string, roots *tls.Config, version, suite uint16, tag string, h2 bool) {
	t.Helper()
	cfg := roots.Clone()
	cfg.ServerName = "example.com"
	cfg.MaxVersion = version
	if suite != 0 {
		cfg.CipherSuites = []uint16{suite}
	}
	var tr interface {
		http.RoundTripper
		CloseIdleConnections()
	} = &http.Transport{TLSClientConfig: cfg, DisableCompression: true, MaxIdleConnsPerHost: 1}
	if h2 {
		cfg.NextProtos = []string{"h2"}
		tr = &http2.Transport{TLSClientConfig: cfg, DisableCompression: true}
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	do := func(method, path, body string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			t.Error(err)
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if (resp.ProtoMajor == 2) != h2 || resp.TLS == nil || resp.TLS.Version != version || (suite != 0 && resp.TLS.CipherSuite != suite) {
			t.Errorf("%s: %s, negotiated %+v", tag, resp.Proto, resp.TLS)
		}
	}
	do("GET", "/small?c="+tag, "")
	if !h2 {
		do("POST", "/echo?c="+tag, strings.Repeat("payload-"+tag+"|", 1000))
		do("GET", "/big?c="+tag, "")
		return
	}
	do("POST", "/echo?c="+tag, strings.Repeat("h2-"+tag+"|", 300))
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do("PUT", fmt.Sprintf("/at-once/%d?c=%s", i, tag), strings.Repeat(fmt.Sprint(i), 200*(i+1)))
		}()
	}
	wg.Wait()
}

// TestTLSKeyLogTcpdump captures real TLS 1.2 and 1.3 traffic between Go's
// TLS server and clients (and curl, when installed) with tcpdump on lo,
// and checks that the pcap and the server's key log give back every
// exchange the server served, bodies exact; and that without the key log
// the connections are counted as "no keys" with their SNI.
func TestTLSKeyLogTcpdump(t *testing.T) {
	srv, served, klPath := keyLogServer(t, false)
	dir := filepath.Dir(klPath)
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig
	path, stop := startTcpdump(t, "lo", srv.Listener.Addr().String())

	conns := 0
	for _, c := range []struct {
		tag     string
		version uint16
		suite   uint16
	}{
		{"tls13", tls.VersionTLS13, 0},
		{"tls12-aes128gcm", tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		{"tls12-aes256gcm", tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		{"tls12-chacha20", tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
	} {
		tlsClientRequests(t, srv.URL, roots, c.version, c.suite, c.tag, false)
		conns++
	}
	conns += curlTLS(t, srv.Listener.Addr().String(), filepath.Join(dir, "curl-keys.log"))
	stop()

	var keys []string
	for _, p := range []string{klPath, filepath.Join(dir, "curl-keys.log")} {
		if _, err := os.Stat(p); err == nil {
			keys = append(keys, p)
		}
	}
	want := served.sorted()
	checkTLSCapture(t, path, keys, want, conns)
	if *update {
		writeTLSFixture(t, "tls-lo", path, keys, want)
	}
}

// writeTLSFixture writes testdata/NAME.pcap (the capture at path),
// NAME.keys (every key log in one file) and NAME.served (the served
// exchanges, one per line).
func writeTLSFixture(t *testing.T, name, path string, keyPaths, served []string) {
	t.Helper()
	var all []byte
	for _, p := range keyPaths {
		b, _ := os.ReadFile(p)
		all = append(all, b...)
	}
	raw, _ := os.ReadFile(path)
	for ext, b := range map[string][]byte{".pcap": raw, ".keys": all, ".served": []byte(strings.Join(served, "\n") + "\n")} {
		if err := os.WriteFile(filepath.Join("testdata", name+ext), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTLSFixture returns the paths of testdata/NAME.pcap and NAME.keys
// and the served exchanges of NAME.served.
func readTLSFixture(t *testing.T, name string) (pcap, keys string, served []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".served"))
	if err != nil {
		t.Fatal(err)
	}
	served = strings.Split(strings.TrimSpace(string(b)), "\n")
	return filepath.Join("testdata", name+".pcap"), filepath.Join("testdata", name+".keys"), served
}

// TestTLSFixture reads the committed TLS capture (see testdata/README.md)
// with and without its key log.
func TestTLSFixture(t *testing.T) {
	pcap, keyPath, want := readTLSFixture(t, "tls-lo")
	checkTLSCapture(t, pcap, []string{keyPath}, want, 6)

	// A wrong key log (every secret's last digit changed) and garbage
	// lines: counted and named, nothing recorded, no panic.
	keys, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, l := range strings.Split(strings.TrimSpace(string(keys)), "\n") {
		d := "0"
		if strings.HasSuffix(l, "0") {
			d = "1"
		}
		bad = append(bad, l[:len(l)-1]+d, "garbage "+l[:10])
	}
	k := tlsdecrypt.NewKeyLog()
	k.Read("bad.keys", strings.NewReader(strings.Join(bad, "\n")))
	if st := k.Stats(); st.Bad != uint64(len(bad)/2) || st.FirstBad[0].Line != 2 {
		t.Errorf("key log stats %+v", st)
	}
	src, err := pcapfile.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p, err := FromPackets(context.Background(), src, WithKeyLog(k))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := p.Next(); err != nil {
			break
		}
	}
	cnt := p.Counters()
	if cnt.Exchanges != 0 || cnt.Unsupported["tls wrong key"] != 6 || cnt.Unsupported["tls"] != 6 || len(p.TLSErrors()) != 6 {
		t.Errorf("wrong keys: counters %+v, errors %v", cnt, p.TLSErrors())
	}
	var re *tlsdecrypt.RecordError
	if !errors.As(p.TLSErrors()[0], &re) || !strings.HasPrefix(re.Conn, "conn ") {
		t.Errorf("error %v does not name the connection", p.TLSErrors()[0])
	}
}

// checkTLSCapture reads the pcap with the key logs and wants the served
// exchanges (sorted lines of exchangeLine) from conns connections, all
// decrypted; then without the key logs, wants them all counted as "no
// keys" with their SNI.
func checkTLSCapture(t *testing.T, path string, keyPaths, want []string, conns int) {
	t.Helper()
	k := loadKeyLog(t, keyPaths...)
	got, cnt := collectFile(t, path, WithKeyLog(k))
	var lines []string
	for _, x := range got {
		if x.Flags != 0 {
			t.Errorf("%s %s: flags %s", x.Request.Method, x.Request.Target, flagNames(x.Flags))
		}
		lines = append(lines, exchangeLine(x.Request.Method, x.Request.Target, x.Request.Body, x.Response.Body))
	}
	slices.Sort(lines)
	if !slices.Equal(lines, want) {
		t.Errorf("exchanges:\n got %s\nwant %s", strings.Join(lines, "\n     "), strings.Join(want, "\n     "))
	}
	var decrypted uint64
	for _, n := range cnt.TLS {
		decrypted += n
	}
	if decrypted != uint64(conns) || len(cnt.Unsupported) != 0 {
		t.Errorf("decrypted %d connections, want %d: %v; unsupported %v", decrypted, conns, cnt.TLS, cnt.Unsupported)
	}
	t.Logf("tls: %v", cnt.TLS)

	// Without the key log: nothing recorded, every connection named by SNI.
	got, cnt = collectFile(t, path)
	if len(got) != 0 || cnt.Unsupported["tls"] != uint64(conns) || cnt.Unsupported["tls no keys sni=example.com"] != uint64(conns) {
		t.Errorf("without keys: %d exchanges, unsupported %v", len(got), cnt.Unsupported)
	}
}

// curlTLS makes requests with curl (when installed) over TLS 1.3 with the
// suites Go's client does not pick, logging keys with SSLKEYLOGFILE, and
// returns the number of connections it made.
func curlTLS(t *testing.T, addr, keylog string) int {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("curl not installed: Go clients only")
		return 0
	}
	_, port, _ := strings.Cut(addr, ":")
	n := 0
	for _, suite := range []string{"TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384"} {
		cmd := exec.Command(curl, "-sSk", "--http1.1", "--tlsv1.3", "--tls13-ciphers", suite,
			"--resolve", "example.com:"+port+":127.0.0.1",
			"https://example.com:"+port+"/small?c=curl-"+suite,
			"-d", strings.Repeat("curl-body ", 2000), "https://example.com:"+port+"/echo?c=curl-"+suite)
		cmd.Env = append(os.Environ(), "SSLKEYLOGFILE="+keylog)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v: %s", suite, err, out)
		}
		n++
	}
	return n
}

// BenchmarkTLSPcapToExchanges measures pcap + key log -> exchanges on the
// committed TLS fixture (six connections, TLS 1.2 and 1.3, every AEAD
// suite); bytes are bytes of pcap.
//
//	go test ./capture -run XXX -bench TLSPcap -cpu 1
//
// With -args -tls-bench-pcap DIR it reads the larger capture that
// TestTLSBenchCapture wrote there.
func BenchmarkTLSPcapToExchanges(b *testing.B) {
	path, keys, want := filepath.Join("testdata", "tls-lo.pcap"), filepath.Join("testdata", "tls-lo.keys"), uint64(16)
	if *tlsBenchDir != "" {
		// The larger capture of TestTLSBenchCapture.
		path, keys, want = filepath.Join(*tlsBenchDir, "tls-bench.pcap"), filepath.Join(*tlsBenchDir, "tls-bench.keys"), 1000
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	k := tlsdecrypt.NewKeyLog()
	if err := k.AddFile(keys); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for range b.N {
		src, err := pcapfile.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		p, err := FromPackets(context.Background(), src, WithKeyLog(k))
		if err != nil {
			b.Fatal(err)
		}
		res, err := Record(context.Background(), p, discard{})
		if err != nil {
			b.Fatal(err)
		}
		src.Close()
		if res.Counters.Exchanges != want {
			b.Fatalf("counters = %+v", res.Counters)
		}
	}
}

var tlsBenchDir = flag.String("tls-bench-pcap", "", "write a larger TLS capture (tls-bench.pcap, tls-bench.keys) into `DIR` for the tshark comparison")

// TestTLSBenchCapture makes the capture behind the README's comparison
// with tshark: 40 keep-alive connections (TLS 1.3 and the three TLS 1.2
// AEAD suites in turn), 25 requests each with bodies of 20-60 KB.
//
//	go test ./capture -run TLSBenchCapture -args -tls-bench-pcap /tmp/tlsbench
func TestTLSBenchCapture(t *testing.T) {
	if *tlsBenchDir == "" {
		t.Skip("run with -tls-bench-pcap DIR")
	}
	klPath := filepath.Join(*tlsBenchDir, "tls-bench.keys")
	kf, err := os.Create(klPath)
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(bytes.Repeat([]byte(`{"id":1,"name":"tea"},`), 1000+len(body)%2000))
	}))
	srv.TLS = &tls.Config{KeyLogWriter: kf}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig
	path, stop := startTcpdump(t, "lo", srv.Listener.Addr().String())
	suites := []uint16{0, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	// One connection at a time, paced: tcpdump on a busy machine loses
	// packets of more.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 1)
	for c := range 40 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cfg := roots.Clone()
			cfg.ServerName = "example.com"
			cfg.MaxVersion = tls.VersionTLS13
			if s := suites[c%4]; s != 0 {
				cfg.MaxVersion, cfg.CipherSuites = tls.VersionTLS12, []uint16{s}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableCompression: true}}
			defer client.CloseIdleConnections()
			for i := range 25 {
				resp, err := client.Post(srv.URL+fmt.Sprintf("/api/items/%d/%d", c, i), "application/json", bytes.NewReader(bytes.Repeat([]byte("x"), 20000+i*1600)))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	stop()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*tlsBenchDir, "tls-bench.pcap"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d MB of pcap", len(raw)>>20)
}
