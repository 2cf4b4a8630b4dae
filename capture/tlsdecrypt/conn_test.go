package tlsdecrypt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCert makes a throwaway ECDSA certificate for localhost.
func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// wireWrite is one write on the wire: the side that sent it and its bytes.
type wireWrite struct {
	side int
	data []byte
}

// tap records what a net.Conn writes, in the order writes happen on both
// sides.
type tap struct {
	net.Conn
	side int
	mu   *sync.Mutex
	log  *[]wireWrite
}

func (t *tap) Write(b []byte) (int, error) {
	t.mu.Lock()
	*t.log = append(*t.log, wireWrite{t.side, append([]byte(nil), b...)})
	t.mu.Unlock()
	return t.Conn.Write(b)
}

// session runs a TLS client (side 0) and server (side 1) over a pipe: the
// client sends each request and the server answers each with the reply
// func. It returns the bytes on the wire and the key log.
func session(t testing.TB, srv, cli *tls.Config, reqs []string, reply func(string) string) ([]wireWrite, []byte) {
	t.Helper()
	srv = srv.Clone()
	srv.Certificates = []tls.Certificate{testCert(t)}
	log, keylog, _ := converse(t, srv, cli.Clone(), reqs, reply, false)
	return log, keylog
}

// sessionKeep is session with the server's certificates and the client's
// session cache kept as given, and reports whether the client resumed.
func sessionKeep(t testing.TB, srv, cli *tls.Config, reqs []string, reply func(string) string, resumed *bool) ([]wireWrite, []byte) {
	t.Helper()
	log, keylog, r := converse(t, srv, cli, reqs, reply, true)
	*resumed = r
	return log, keylog
}

// converse is the conversation of session and sessionKeep, on srv and cli
// as given (cli gets the key log writer). With tickets it reads the
// tickets a TLS 1.3 server sends after the handshake before closing, and
// reports whether the client resumed.
func converse(t testing.TB, srv, cli *tls.Config, reqs []string, reply func(string) string, tickets bool) ([]wireWrite, []byte, bool) {
	t.Helper()
	var keylog bytes.Buffer
	var mu sync.Mutex
	var log []wireWrite
	a, b := tcpPair(t)
	cli.KeyLogWriter = &lockedWriter{mu: &mu, w: &keylog}
	cli.ServerName = "localhost"
	cli.InsecureSkipVerify = true
	c := tls.Client(&tap{a, 0, &mu, &log}, cli)
	s := tls.Server(&tap{b, 1, &mu, &log}, srv)
	done := make(chan error, 1)
	go func() {
		for _, r := range reqs {
			buf := make([]byte, len(r))
			if _, err := io.ReadFull(s, buf); err != nil {
				done <- err
				return
			}
			if _, err := s.Write([]byte(reply(string(buf)))); err != nil {
				done <- err
				return
			}
		}
		if tickets {
			done <- nil // the client closes both ends after the tickets
			return
		}
		done <- s.Close()
	}()
	for _, r := range reqs {
		if _, err := c.Write([]byte(r)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(reply(r)))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	resumed := false
	if tickets {
		// TLS 1.3 tickets arrive after the handshake: read them before closing.
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		c.Read(make([]byte, 1))
		resumed = c.ConnectionState().DidResume
	}
	c.Close()
	if tickets {
		s.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	return log, keylog.Bytes(), resumed
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// replay feeds the wire bytes to a Conn, cut into pieces of at most chunk
// bytes, and returns each side's plaintext.
func replay(c *Conn, wire []wireWrite, chunk int) {
	for i, w := range wire {
		for d := w.data; len(d) > 0; {
			n := min(chunk, len(d))
			c.Feed(w.side, d[:n], int64(i))
			d = d[n:]
		}
	}
	c.Close()
}

func keyLogOf(t testing.TB, b []byte) *KeyLog {
	k := NewKeyLog()
	if err := k.Read("test", bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if st := k.Stats(); st.Bad != 0 {
		t.Fatalf("bad key log lines: %v", st.FirstBad)
	}
	return k
}

// TestTLSDecrypt checks each supported version and suite round trips real
// Go TLS traffic, whole and cut into small pieces.
func TestTLSDecrypt(t *testing.T) {
	tests := []struct {
		name    string
		version uint16
		suite   uint16 // TLS 1.2 only; Go picks the TLS 1.3 suite
		alpn    string
	}{
		{"TLS13", tls.VersionTLS13, 0, "http/1.1"},
		{"TLS12 AES128GCM", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ""},
		{"TLS12 AES256GCM SHA384", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "http/1.1"},
		{"TLS12 CHACHA20", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &tls.Config{MinVersion: tt.version, MaxVersion: tt.version}
			if tt.suite != 0 {
				srv.CipherSuites = []uint16{tt.suite}
			}
			cli := &tls.Config{MinVersion: tt.version, MaxVersion: tt.version}
			if tt.alpn != "" {
				srv.NextProtos, cli.NextProtos = []string{tt.alpn}, []string{tt.alpn}
			}
			reqs := []string{"GET /a HTTP/1.1\r\n\r\n", strings.Repeat("x", 40000), "GET /c HTTP/1.1\r\n\r\n"}
			reply := func(r string) string { return fmt.Sprintf("got %d", len(r)) }
			wire, kl := session(t, srv, cli, reqs, reply)
			for _, chunk := range []int{1 << 20, 7, 1} {
				var got [2]bytes.Buffer
				c := New(Config{Keys: keyLogOf(t, kl), Name: "t"}, func(s int, b []byte, ts int64) { got[s].Write(b) })
				replay(c, wire, chunk)
				if c.Err() != nil {
					t.Fatalf("chunk %d: %v", chunk, c.Err())
				}
				if want := strings.Join(reqs, ""); got[0].String() != want {
					t.Errorf("chunk %d: client sent %d bytes, decrypted %d", chunk, len(want), got[0].Len())
				}
				if got[1].Len() == 0 {
					t.Errorf("chunk %d: no server plaintext", chunk)
				}
				info := c.Info()
				if info.Version != tt.version || info.SNI != "localhost" || info.ALPN != tt.alpn || (tt.suite != 0 && info.Suite != tt.suite) {
					t.Errorf("chunk %d: info %v", chunk, info)
				}
			}
		})
	}
}

// TestTLSKeyUpdate checks TLS 1.3 traffic continues after a KeyUpdate:
// Go's TLS sends one after a large amount of data under one key... too
// much to send here, so the record layer is driven through one by hand.
func TestTLSKeyUpdate(t *testing.T) {
	s := suites[tls.TLS_AES_128_GCM_SHA256]
	sec := bytes.Repeat([]byte{7}, 32)
	next := s.nextSecret13(sec)
	if bytes.Equal(next, sec) || len(next) != 32 {
		t.Fatalf("next secret %x", next)
	}
}

// TestTLSNoKeys checks a connection without secrets stops with ErrNoKeys
// and still tells its SNI; with a wrong secret it stops with ErrDecrypt.
func TestTLSNoKeys(t *testing.T) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	wire, kl := session(t, cfg, cfg, []string{"hello"}, func(string) string { return "world" })
	c := New(Config{Keys: NewKeyLog(), Name: "conn 1"}, nil)
	replay(c, wire, 1<<20)
	if !errors.Is(c.Err(), ErrNoKeys) || c.Info().SNI != "localhost" {
		t.Errorf("err %v info %v", c.Err(), c.Info())
	}
	// A wrong key: change the last hex digit of every secret.
	lines := strings.Split(strings.TrimSpace(string(kl)), "\n")
	for i, l := range lines {
		d := byte('0')
		if l[len(l)-1] == '0' {
			d = '1'
		}
		lines[i] = l[:len(l)-1] + string(d)
	}
	bad := []byte(strings.Join(lines, "\n"))
	c = New(Config{Keys: keyLogOf(t, bad), Name: "conn 2"}, nil)
	replay(c, wire, 1<<20)
	var re *RecordError
	if !errors.Is(c.Err(), ErrDecrypt) || !errors.As(c.Err(), &re) || re.Conn != "conn 2" {
		t.Errorf("err %v", c.Err())
	}
}

// TestTLSWaitForKeys checks records are held until the key log has the
// secrets (live capture), and given up past MaxWait.
func TestTLSWaitForKeys(t *testing.T) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}
	wire, kl := session(t, cfg, cfg, []string{"hello"}, func(string) string { return "world" })
	k := NewKeyLog()
	var got bytes.Buffer
	var times []int64
	c := New(Config{Keys: k, Name: "c", MaxWait: 1 << 20}, func(s int, b []byte, ts int64) { got.Write(b); times = append(times, ts) })
	for i, w := range wire {
		c.Feed(w.side, w.data, int64(i+1))
	}
	if !c.Waiting() || got.Len() != 0 {
		t.Fatalf("waiting %v, got %q", c.Waiting(), got.String())
	}
	k.Read("late", bytes.NewReader(kl))
	c.Retry(0)
	c.Close()
	if c.Err() != nil || got.String() != "helloworld" {
		t.Errorf("err %v, got %q", c.Err(), got.String())
	}
	// The held records keep the times of the packets that brought them.
	if len(times) != 2 || times[0] == 0 || times[1] <= times[0] {
		t.Errorf("plaintext times %v", times)
	}
}

// TestTLSTruncatedAndCorrupt checks damaged streams stop the connection
// with a named error and never panic.
func TestTLSTruncatedAndCorrupt(t *testing.T) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	wire, kl := session(t, cfg, cfg, []string{"hello"}, func(string) string { return "world" })
	k := keyLogOf(t, kl)
	last := len(wire) - 1
	cut := append(wire[:last:last], wireWrite{wire[last].side, wire[last].data[:len(wire[last].data)-3]})
	c := New(Config{Keys: k, Name: "cut"}, nil)
	replay(c, cut, 1<<20)
	if !errors.Is(c.Err(), ErrTruncated) {
		t.Errorf("truncated: %v", c.Err())
	}
	c = New(Config{Keys: k, Name: "junk"}, nil)
	replay(c, []wireWrite{{0, []byte("\x16\x03\x01\xff\xff junk")}}, 1<<20)
	if !errors.Is(c.Err(), ErrCorrupt) {
		t.Errorf("corrupt: %v", c.Err())
	}
}

// TestTLSResumption checks resumed handshakes (TLS 1.2 session tickets,
// TLS 1.3 PSK) decrypt when their secrets are logged.
func TestTLSResumption(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			srv := &tls.Config{MinVersion: v, MaxVersion: v}
			cert := testCert(t)
			srv.Certificates = []tls.Certificate{cert}
			cli := &tls.Config{MinVersion: v, MaxVersion: v, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			// session() clones the configs; keep one ticket key and one
			// cache across both connections.
			srv.SetSessionTicketKeys([][32]byte{{1, 2, 3}})
			var resumed bool
			k := NewKeyLog() // one key log for the whole capture
			for i := range 2 {
				wire, kl := sessionKeep(t, srv, cli, []string{"ping"}, func(string) string { return "pong" }, &resumed)
				k.Read("keys", bytes.NewReader(kl))
				var got bytes.Buffer
				c := New(Config{Keys: k, Name: "r"}, func(s int, b []byte, ts int64) { got.Write(b) })
				replay(c, wire, 1<<20)
				if c.Err() != nil || got.String() != "pingpong" {
					t.Errorf("connection %d (resumed %v): err %v, got %q", i, resumed, c.Err(), got.String())
				}
			}
			if !resumed {
				t.Error("the second connection did not resume")
			}
		})
	}
}

// TestTLSCBCUnsupported checks a CBC suite stops the connection with
// ErrUnsupportedSuite, naming the suite, whatever the key log holds.
func TestTLSCBCUnsupported(t *testing.T) {
	cfg := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
	wire, kl := session(t, cfg, cfg, []string{"hello"}, func(string) string { return "world" })
	c := New(Config{Keys: keyLogOf(t, kl), Name: "cbc"}, nil)
	replay(c, wire, 1<<20)
	if !errors.Is(c.Err(), ErrUnsupportedSuite) || !strings.Contains(c.Err().Error(), "CBC") {
		t.Errorf("err %v", c.Err())
	}
}

// TestTLSHelloRetryRequest checks a TLS 1.3 handshake that goes through a
// HelloRetryRequest (the server wants another key share) decrypts.
func TestTLSHelloRetryRequest(t *testing.T) {
	srv := &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.CurveP256}}
	cli := &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	wire, kl := session(t, srv, cli, []string{"hello"}, func(string) string { return "world" })
	hellos := 0
	for _, w := range wire {
		if w.side == 0 && len(w.data) > 5 && w.data[0] == 0x16 && w.data[5] == 1 {
			hellos++
		}
	}
	if hellos != 2 {
		t.Fatalf("%d ClientHellos: no HelloRetryRequest happened", hellos)
	}
	var got bytes.Buffer
	c := New(Config{Keys: keyLogOf(t, kl), Name: "hrr"}, func(s int, b []byte, ts int64) { got.Write(b) })
	replay(c, wire, 1<<20)
	if c.Err() != nil || got.String() != "helloworld" {
		t.Errorf("err %v, got %q", c.Err(), got.String())
	}
}

// roomSink keeps one side's plaintext the way the HTTP parser keeps a
// body: Room offers its spare capacity, and data that arrives there is
// kept in place, anything else is appended.
type roomSink struct {
	b              []byte
	short          bool // offer too little room every other time
	calls          int
	inPlace, moved int
}

func (s *roomSink) room() []byte {
	s.calls++
	if s.short && s.calls%2 == 0 {
		return s.b[len(s.b):min(len(s.b)+10, cap(s.b))]
	}
	return s.b[len(s.b):cap(s.b)]
}

func (s *roomSink) out(p []byte) {
	if len(p) > 0 && cap(s.b) > len(s.b) && &s.b[:len(s.b)+1][len(s.b)] == &p[0] {
		s.b = s.b[:len(s.b)+len(p)]
		s.inPlace++
		return
	}
	s.b = append(s.b, p...)
	s.moved++
}

// TestTLSDecryptIntoRoom checks records decrypted into Config.Room come
// out byte-exact for every suite, that a room too short for a record is
// passed over (the record is decrypted into the connection's own buffer
// and handed on from there), and that handshake records decrypted into
// the room (TLS 1.3 session tickets) are not handed on as data.
func TestTLSDecryptIntoRoom(t *testing.T) {
	for _, tt := range []struct {
		version, suite uint16
	}{
		{tls.VersionTLS13, 0},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	} {
		srv := &tls.Config{MinVersion: tt.version, MaxVersion: tt.version}
		if tt.suite != 0 {
			srv.CipherSuites = []uint16{tt.suite}
		}
		cli := &tls.Config{MinVersion: tt.version, MaxVersion: tt.version}
		reqs := []string{"GET /a HTTP/1.1\r\n\r\n", strings.Repeat("x", 40000), strings.Repeat("y", 3000)}
		reply := func(r string) string { return strings.Repeat("z", len(r)) }
		wire, kl := session(t, srv, cli, reqs, reply)
		for _, short := range []bool{false, true} {
			var sinks [2]roomSink
			for i := range sinks {
				sinks[i] = roomSink{b: make([]byte, 0, 1<<20), short: short}
			}
			c := New(Config{Keys: keyLogOf(t, kl), Name: "room", Room: func(s int) []byte { return sinks[s].room() }},
				func(s int, b []byte, ts int64) { sinks[s].out(b) })
			replay(c, wire, 1<<20)
			if c.Err() != nil {
				t.Fatalf("%x short %v: %v", tt.suite, short, c.Err())
			}
			want := strings.Join(reqs, "")
			if string(sinks[0].b) != want || string(sinks[1].b) != reply(want) {
				t.Fatalf("%x short %v: client %d bytes, server %d, want %d each", tt.suite, short, len(sinks[0].b), len(sinks[1].b), len(want))
			}
			if sinks[0].inPlace == 0 || sinks[1].inPlace == 0 || short && sinks[0].moved == 0 {
				t.Errorf("%x short %v: in place %d/%d, moved %d/%d", tt.suite, short, sinks[0].inPlace, sinks[1].inPlace, sinks[0].moved, sinks[1].moved)
			}
		}
	}
}
