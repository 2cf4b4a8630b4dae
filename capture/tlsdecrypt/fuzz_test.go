package tlsdecrypt

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateFuzz = flag.Bool("update-fuzz", false, "rewrite the seed corpora in testdata/fuzz from fresh TLS sessions")

// encodeWire frames wire writes as side byte, 2-byte length, bytes.
func encodeWire(ws []wireWrite) []byte {
	var b []byte
	for _, w := range ws {
		for d := w.data; len(d) > 0; {
			n := min(len(d), 0xffff)
			b = append(b, byte(w.side))
			b = binary.BigEndian.AppendUint16(b, uint16(n))
			b = append(b, d[:n]...)
			d = d[n:]
		}
	}
	return b
}

// decodeWire undoes encodeWire on any input, keeping what parses.
func decodeWire(b []byte) []wireWrite {
	var ws []wireWrite
	for len(b) >= 3 {
		n := int(binary.BigEndian.Uint16(b[1:]))
		side := int(b[0] & 1)
		b = b[3:]
		n = min(n, len(b))
		ws = append(ws, wireWrite{side, b[:n]})
		b = b[n:]
	}
	return ws
}

// fuzzSessions are real sessions to seed the record layer fuzzer.
func fuzzSessions(t testing.TB) [][2][]byte {
	var out [][2][]byte
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := &tls.Config{MinVersion: v, MaxVersion: v, NextProtos: []string{"http/1.1"}}
		wire, kl := session(t, cfg, cfg, []string{"GET / HTTP/1.1\r\n\r\n"}, func(string) string { return "HTTP/1.1 200 OK\r\n\r\n" })
		out = append(out, [2][]byte{kl, encodeWire(wire)})
	}
	return out
}

// FuzzRecordLayer feeds arbitrary records, with a key log that may or may
// not match, cut at arbitrary points: the reader must never panic, and
// must stop with a *RecordError or decrypt. Decrypting into Config.Room
// (a room too short every other time when chunk is odd) must hand on the
// same plaintext and stop the same way.
func FuzzRecordLayer(f *testing.F) {
	for _, s := range fuzzSessions(f) {
		f.Add(s[0], s[1], uint16(0))
		f.Add(s[0], s[1], uint16(5))
	}
	f.Fuzz(func(t *testing.T, keylog, wire []byte, chunk uint16) {
		k := NewKeyLog()
		k.Read("fuzz", bytes.NewReader(keylog))
		var plain [2]bytes.Buffer
		c := New(Config{Keys: k, Name: "fuzz", MaxWait: int(chunk) * 16}, func(s int, b []byte, _ int64) { plain[s].Write(b) })
		replay(c, decodeWire(wire), int(chunk)+1)
		if c.State() == Stopped {
			if _, ok := c.Err().(*RecordError); !ok {
				t.Fatalf("stopped with %T %v", c.Err(), c.Err())
			}
		}
		k2 := NewKeyLog()
		k2.Read("fuzz", bytes.NewReader(keylog))
		sinks := [2]roomSink{{b: make([]byte, 0, 1<<16), short: chunk%2 == 1}, {b: make([]byte, 0, 1<<16), short: chunk%2 == 1}}
		cr := New(Config{Keys: k2, Name: "fuzz", MaxWait: int(chunk) * 16, Room: func(s int) []byte { return sinks[s].room() }},
			func(s int, b []byte, _ int64) { sinks[s].out(b) })
		replay(cr, decodeWire(wire), int(chunk)+1)
		for s := range sinks {
			if !bytes.Equal(sinks[s].b, plain[s].Bytes()) {
				t.Fatalf("side %d: %d bytes through the room, %d without", s, len(sinks[s].b), plain[s].Len())
			}
		}
		if cr.State() != c.State() || fmt.Sprint(cr.Err()) != fmt.Sprint(c.Err()) {
			t.Fatalf("with room: %v %v; without: %v %v", cr.State(), cr.Err(), c.State(), c.Err())
		}
	})
}

// FuzzKeylog reads arbitrary key logs and pcapng files: no panic, and the
// counts add up.
func FuzzKeylog(f *testing.F) {
	f.Add([]byte("CLIENT_RANDOM " + testRandom[:64] + " " + testMaster + "\n# c\nbad line\n"))
	f.Add([]byte("SERVER_HANDSHAKE_TRAFFIC_SECRET " + testRandom[:64] + " " + testMaster[:64] + "\r\n"))
	f.Add([]byte("\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k := NewKeyLog()
		k.Read("fuzz", bytes.NewReader(b))
		st := k.Stats()
		if st.Bad > st.Lines+1 || len(st.FirstBad) > maxBadKept {
			t.Fatalf("stats %+v", st)
		}
		k.ReadPcapng("fuzz", bytes.NewReader(b))
	})
}

// TestWriteFuzzSeeds refreshes the seed corpora with -update-fuzz.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateFuzz {
		t.Skip("run with -update-fuzz to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRecordLayer")
	os.MkdirAll(dir, 0o755)
	for i, s := range fuzzSessions(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nuint16(%d)\n", s[0], s[1], 3)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("session-%d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzKeylog")
	os.MkdirAll(dir, 0o755)
	lines := strings.Join([]string{"CLIENT_RANDOM " + testRandom[:64] + " " + testMaster, "CLIENT_TRAFFIC_SECRET_0 " + testRandom[:64] + " " + testMaster[:64], "x y", ""}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "lines"), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", lines)), 0o644); err != nil {
		t.Fatal(err)
	}
}
