package tlsdecrypt

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
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
	keys := filepath.Join(t.TempDir(), "keys.log")
	wire, out := sClient(t, openssl, echo, []string{"before\n", "K\n", "after\n"}, "-keylogfile", keys)
	if !strings.Contains(out, "KEYUPDATE") {
		t.Skipf("this openssl did not send a key update:\n%s", out)
	}
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

// sClient runs openssl s_client through a relay to addr with args,
// writing each of lines a moment after the one before (the first after
// the handshake), and returns the bytes on the wire and what s_client
// printed. It ends s_client by ending its input.
func sClient(t *testing.T, openssl, addr string, lines []string, args ...string) ([]wireWrite, string) {
	t.Helper()
	via, wait := relay(t, addr)
	cmd := exec.Command(openssl, append([]string{"s_client", "-connect", via, "-servername", "localhost", "-tls1_3"}, args...)...)
	in, _ := cmd.StdinPipe()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Skipf("openssl s_client: %v", err)
	}
	for _, l := range lines {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(in, l)
	}
	time.Sleep(300 * time.Millisecond)
	in.Close()
	if !testkit.WaitOrKill(cmd, 10*time.Second) {
		t.Fatal("openssl s_client did not end")
	}
	return wait(), out.String()
}

// TestEarlyDataOpenSSL: openssl s_client resumes a session with openssl
// s_server and sends 0-RTT data under its early traffic secret. Accepted,
// it comes out first on the client's side, then what was sent after the
// handshake. Rejected after a HelloRetryRequest (the client's key share is
// in a group the server does not take), the server never read it, and
// only what was sent after the handshake comes out.
func TestEarlyDataOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	certPath, keyPath := testkit.WriteKeyPair(t, dir, "localhost", testCert(t))
	addr := testkit.FreeAddr(t)
	srv := exec.Command(openssl, "s_server", "-accept", addr, "-cert", certPath, "-key", keyPath, "-tls1_3",
		"-early_data", "-groups", "P-256", "-naccept", "4", "-quiet") // the first: the probe below
	// Its input stays open: at its end s_server closes the connection.
	srvIn, _ := srv.StdinPipe()
	if err := srv.Start(); err != nil {
		t.Skipf("openssl s_server: %v", err)
	}
	t.Cleanup(func() { srvIn.Close(); srv.Process.Kill(); srv.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("openssl s_server did not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	keys, sess, early := filepath.Join(dir, "keys.log"), filepath.Join(dir, "sess.pem"), filepath.Join(dir, "early.txt")
	os.WriteFile(early, []byte("early data\n"), 0o644)
	sClient(t, openssl, addr, []string{"full\n"}, "-groups", "P-256", "-sess_out", sess, "-keylogfile", keys)
	cases := []struct {
		name, groups, said, got string
		rejected                bool
	}{
		{"accepted", "P-256", "Early data was accepted", "early data\nafter\n", false},
		{"rejected", "X25519:P-256", "Early data was rejected", "after\n", true},
	}
	for _, c := range cases {
		wire, out := sClient(t, openssl, addr, []string{"after\n"}, "-groups", c.groups, "-sess_in", sess, "-early_data", early, "-keylogfile", keys)
		if !strings.Contains(out, c.said) {
			t.Fatalf("%s: s_client did not say %q:\n%s", c.name, c.said, out)
		}
		kl, err := os.ReadFile(keys)
		if err != nil {
			t.Fatal(err)
		}
		if *updateFuzz { // a 0-RTT seed for FuzzRecordLayer
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nuint16(%d)\n", kl, encodeWire(wire), 3)
			os.WriteFile(filepath.Join("testdata", "fuzz", "FuzzRecordLayer", "early-"+c.name), []byte(body), 0o644)
		}
		for _, chunk := range []int{1 << 20, 7} {
			var got bytes.Buffer
			conn := New(Config{Keys: keyLogOf(t, kl), Name: c.name}, func(s int, b []byte, ts int64) {
				if s == 0 {
					got.Write(b)
				}
			})
			replay(conn, wire, chunk)
			st := conn.Stats()
			if conn.Err() != nil || got.String() != c.got || st.EarlySkipped != 0 ||
				c.rejected != (st.EarlyRejected > 0) || c.rejected != (st.Early == 0) || conn.hrr != c.rejected {
				t.Errorf("%s, pieces of %d: client sent %q, want %q; err %v, stats %+v, hrr %v", c.name, chunk, got.String(), c.got, conn.Err(), st, conn.hrr)
			}
		}
	}
}
