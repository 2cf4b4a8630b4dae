package tlsdecrypt

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

// relay accepts one connection on a loopback listener, forwards it to
// target, and records the bytes of both directions in order (side 0 the
// client's). It returns the listener's address and a func that waits for
// the relay to end and returns what it saw.
func relay(t *testing.T, target string) (string, func() []wireWrite) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []wireWrite
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer ln.Close()
		a, err := ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", target)
		if err != nil {
			a.Close()
			return
		}
		var inner sync.WaitGroup
		pipe := func(side int, dst, src net.Conn) {
			defer inner.Done()
			buf := make([]byte, 1<<16)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					mu.Lock()
					log = append(log, wireWrite{side, append([]byte(nil), buf[:n]...)})
					mu.Unlock()
					dst.Write(buf[:n])
				}
				if err != nil {
					dst.(*net.TCPConn).CloseWrite()
					return
				}
			}
		}
		inner.Add(2)
		go pipe(0, b, a)
		go pipe(1, a, b)
		inner.Wait()
		a.Close()
		b.Close()
	}()
	return ln.Addr().String(), func() []wireWrite {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return log
	}
}

// TestTLSKeyUpdateOpenSSL has openssl s_client ask for a TLS 1.3 key
// update in the middle of a connection (its "K" command: update and
// request the peer's), so both directions change keys, and checks the
// data on both sides of it decrypts.
func TestTLSKeyUpdateOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{testCert(t)}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	echo := testkit.ServeOne(t, ln, func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			io.WriteString(c, "echo "+sc.Text()+"\n")
		}
	})
	addr, wait := relay(t, echo)
	keys := filepath.Join(t.TempDir(), "keys.log")
	cmd := exec.Command(openssl, "s_client", "-connect", addr, "-servername", "localhost", "-tls1_3", "-keylogfile", keys)
	in, _ := cmd.StdinPipe()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Skipf("openssl s_client: %v", err)
	}
	for _, l := range []string{"before\n", "K\n", "after\n"} {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(in, l)
	}
	time.Sleep(300 * time.Millisecond)
	in.Close()
	if !testkit.WaitOrKill(cmd, 10*time.Second) {
		t.Fatal("openssl did not end")
	}
	if !strings.Contains(out.String(), "KEYUPDATE") {
		t.Skipf("this openssl did not send a key update:\n%s", out.String())
	}
	wire := wait()
	kl, err := os.ReadFile(keys)
	if err != nil {
		t.Fatal(err)
	}
	var got [2]bytes.Buffer
	c := New(Config{Keys: keyLogOf(t, kl), Name: "openssl"}, func(s int, b []byte, ts int64) { got[s].Write(b) })
	replay(c, wire, 1<<20)
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	if got[0].String() != "before\nafter\n" || got[1].String() != "echo before\necho after\n" {
		t.Errorf("client sent %q, server %q", got[0].String(), got[1].String())
	}
}
