//go:build linux

package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

// openLo opens a capture on loopback or skips the test when the process
// may not (not root, no CAP_NET_RAW).
func openLo(t *testing.T, cfg Config) *Source {
	t.Helper()
	cfg.Interface = "lo"
	s, err := Open(context.Background(), cfg)
	var perm *PermissionError
	if errors.As(err, &perm) {
		t.Skipf("live capture not permitted here (run as root or with CAP_NET_RAW): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serve starts a net/http server on a free loopback port.
func serve(t *testing.T, h http.Handler) (port uint16, url string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return uint16(ln.Addr().(*net.TCPAddr).Port), "http://" + ln.Addr().String()
}

// collect reads packets until the source ends.
func collect(s *Source) (<-chan []gopacket.Packet, <-chan error) {
	out := make(chan []gopacket.Packet, 1)
	errc := make(chan error, 1)
	go func() {
		var ps []gopacket.Packet
		for {
			data, ci, err := s.ReadPacketData()
			if err == io.EOF {
				break
			}
			if errors.Is(err, ErrTimeout) {
				continue
			}
			if err != nil {
				errc <- err
				break
			}
			p := gopacket.NewPacket(data, s.LinkType(), gopacket.Default)
			p.Metadata().CaptureInfo = ci
			ps = append(ps, p)
		}
		out <- ps
		close(errc)
	}()
	return out, errc
}

func TestLoopbackEachPacketOnceAndFiltered(t *testing.T) {
	checkLoopback(t, func(port uint16) Config { return Config{Ports: []uint16{port}} })
}

// checkLoopback captures on lo with the config cfg returns for the
// server's port while a client talks to that server and to another one,
// and checks that every request and response payload is seen exactly once
// and nothing of the other server passes the filter.
func checkLoopback(t *testing.T, cfg func(port uint16) Config) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "answer to %s", r.Header.Get("X-Req"))
	})
	port, url := serve(t, echo)
	_, otherURL := serve(t, echo)
	s := openLo(t, cfg(port))
	if v, notes := s.Ring(); v != "V3" {
		t.Logf("ring %s: %v", v, notes)
	}
	packets, errc := collect(s)

	const n = 50
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	for i := range n {
		for _, u := range []string{url, otherURL} {
			req := testkit.NewRequest(t, "POST", u+"/x", "body")
			req.Header.Set("X-Req", fmt.Sprintf("req-%03d", i))
			testkit.Send(t, cl, req)
		}
	}
	cl.CloseIdleConnections()
	time.Sleep(300 * time.Millisecond) // let the last ring block retire
	s.Close()
	ps := <-packets
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{}
	answers := 0
	for _, p := range ps {
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("non-TCP packet passed the filter: %v", p)
		}
		if uint16(tcp.SrcPort) != port && uint16(tcp.DstPort) != port {
			t.Fatalf("packet for ports %d->%d passed a filter for %d", tcp.SrcPort, tcp.DstPort, port)
		}
		pl := tcp.Payload
		if i := bytes.Index(pl, []byte("X-Req: req-")); i >= 0 {
			seen[string(pl[i+7:i+14])]++
		}
		answers += bytes.Count(pl, []byte("answer to req-"))
	}
	for i := range n {
		id := fmt.Sprintf("req-%03d", i)
		if seen[id] != 1 {
			t.Errorf("request %s seen %d times, want once", id, seen[id])
		}
	}
	if answers != n {
		t.Errorf("saw %d response payloads, want %d", answers, n)
	}
	recv, drop, err := s.Drops()
	if err != nil || drop != 0 || recv < uint64(len(ps)) {
		t.Errorf("Drops() = %d, %d, %v with %d packets read", recv, drop, err, len(ps))
	}
}

func TestContextEndsCapture(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Open(ctx, Config{Interface: "lo", Ports: []uint16{1}})
	var perm *PermissionError
	if errors.As(err, &perm) {
		t.Skipf("live capture not permitted here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() {
		for {
			_, _, err := s.ReadPacketData()
			if !errors.Is(err, ErrTimeout) {
				done <- err
				return
			}
		}
	}()
	cancel()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Fatalf("read after cancel: %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not end after the context was cancelled")
	}
}

// TestKernelDropsReported fills a small ring without reading it and
// checks that the kernel's drops are reported.
func TestKernelDropsReported(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 1<<20)
	port, url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(big)
	}))
	s := openLo(t, Config{Ports: []uint16{port}, RingSize: 2 << 20})
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				resp, err := cl.Post(url, "application/octet-stream", bytes.NewReader(big))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	cl.CloseIdleConnections()
	recv, drop, err := s.Drops()
	if err != nil {
		t.Fatal(err)
	}
	if drop == 0 || recv < drop {
		t.Fatalf("Drops() = received %d, dropped %d; want drops from a full 2 MiB ring", recv, drop)
	}
	s.Close()
	r2, d2, err := s.Drops()
	if err != nil || r2 < recv || d2 < drop {
		t.Fatalf("after Close: %d %d %v, want at least %d %d", r2, d2, err, recv, drop)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(context.Background(), Config{Interface: "no-such-if0"}); err == nil || !strings.Contains(err.Error(), "available:") {
		t.Fatalf("unknown interface: %v", err)
	}
	_, err := Open(context.Background(), Config{Interface: "lo", Expr: "tcp port 80"})
	var perm *PermissionError
	if err == nil && !errors.As(err, &perm) {
		// A pcap build compiles the expression; nothing more to check.
		return
	}
	if !errors.Is(err, ErrNoPcap) && !errors.As(err, &perm) && err != nil {
		t.Fatalf("raw expression without libpcap: %v", err)
	}
	msg := (&PermissionError{Interface: "eth0", Err: errors.New("operation not permitted")}).Error()
	for _, want := range []string{"CAP_NET_RAW", "reprise proxy", "--pcap"} {
		if !strings.Contains(msg, want) {
			t.Errorf("permission message %q lacks %q", msg, want)
		}
	}
}

// TestPermissionDenied opens a capture without CAP_NET_RAW: as an
// unprivileged user directly, or as root by running this test binary again
// as nobody. The error must be a *PermissionError naming the way out.
func TestPermissionDenied(t *testing.T) {
	if os.Getenv("REPRISE_LIVE_PERMISSION_CHILD") == "1" || os.Getuid() != 0 {
		_, err := Open(context.Background(), Config{Interface: "lo"})
		var perm *PermissionError
		if os.Getuid() != 0 && err == nil {
			t.Skip("this unprivileged process has CAP_NET_RAW")
		}
		if !errors.As(err, &perm) {
			t.Fatalf("Open without CAP_NET_RAW: %v, want a *PermissionError", err)
		}
		fmt.Println("PERMISSION:", err)
		return
	}
	// Root: copy the test binary where nobody can run it, then run it as
	// nobody (uid and gid 65534), which drops every capability.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // both are the test's own
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Skipf("cannot read the test binary to re-run it unprivileged: %v", err)
	}
	bin := filepath.Join(dir, "live.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPermissionDenied$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REPRISE_LIVE_PERMISSION_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Skipf("cannot run the test binary as nobody here (noexec temp dir?): %v", err)
	}
	if err != nil {
		t.Fatalf("unprivileged run failed: %v\n%s", err, out)
	}
	for _, want := range []string{"PERMISSION:", "CAP_NET_RAW", "reprise proxy", "--pcap"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("unprivileged run lacks %q:\n%s", want, out)
		}
	}
	t.Logf("as nobody: %s", out)
}

func TestQuietReportsTimeout(t *testing.T) {
	s := openLo(t, Config{Ports: []uint16{1}}) // nothing talks on port 1
	_, _, err := s.ReadPacketData()
	var ne net.Error
	if !errors.Is(err, ErrTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("quiet read: %v, want ErrTimeout as a net.Error", err)
	}
}
