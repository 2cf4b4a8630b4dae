package pcapfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

type pkt struct {
	at   int // milliseconds
	data string
}

func writeFile(t testing.TB, path string, lt layers.LinkType, ng bool, pkts []pkt) {
	t.Helper()
	var buf bytes.Buffer
	base := time.Unix(1_700_000_000, 0)
	ci := func(p pkt) gopacket.CaptureInfo {
		return gopacket.CaptureInfo{Timestamp: base.Add(time.Duration(p.at) * time.Millisecond), CaptureLength: len(p.data), Length: len(p.data)}
	}
	if ng {
		w, err := pcapgo.NewNgWriter(&buf, lt)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			if err := w.WritePacket(ci(p), []byte(p.data)); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
	} else {
		w := pcapgo.NewWriter(&buf)
		w.WriteFileHeader(65535, lt)
		for _, p := range pkts {
			if err := w.WritePacket(ci(p), []byte(p.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMerge checks packets of several files come out in time order, each
// with its own file's link type, and that a file whose packets all come
// later is opened only when they are due.
func TestMerge(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.pcap"), layers.LinkTypeEthernet, false, []pkt{{1, "a1"}, {4, "a4"}, {6, "a6"}})
	writeFile(t, filepath.Join(dir, "b.pcapng"), layers.LinkTypeLinuxSLL2, true, []pkt{{2, "b2"}, {5, "b5"}})
	writeFile(t, filepath.Join(dir, "c.pcap"), layers.LinkTypeRaw, false, []pkt{{10, "c10"}})
	for _, zeroCopy := range []bool{false, true} {
		s, err := Open(filepath.Join(dir, "c.pcap"), filepath.Join(dir, "*.pcap*"))
		if err != nil {
			t.Fatal(err)
		}
		// Zero copy: each packet is read from its file's buffer while the
		// other files hold their next packets in theirs.
		read := s.ReadPacketData
		if zeroCopy {
			read = s.ZeroCopyReadPacketData
		}
		var got []string
		for {
			data, _, err := read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(data)+"/"+s.LinkType().String())
			if len(s.active) > 2 {
				t.Errorf("%d files open at once, want at most 2", len(s.active))
			}
		}
		s.Close()
		want := []string{"a1/Ethernet", "b2/Linux SLL2", "a4/Ethernet", "b5/Linux SLL2", "a6/Ethernet", "c10/Raw"}
		if len(got) != len(want) {
			t.Fatalf("zero copy %v: got %v, want %v", zeroCopy, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("zero copy %v: got %v, want %v", zeroCopy, got, want)
			}
		}
	}
}

// FuzzOpen reads arbitrary bytes as a capture file: errors, never panics.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	for i, ng := range []bool{false, true} {
		p := filepath.Join(dir, "seed")
		writeFile(f, p, layers.LinkTypeEthernet, ng, []pkt{{1, "hello"}, {2, "world!"}})
		raw, _ := os.ReadFile(p)
		f.Add(raw)
		f.Add(raw[:len(raw)-3+i])
	}
	f.Add([]byte("\x1f\x8b\x08\x00garbage"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := filepath.Join(t.TempDir(), "f.pcap")
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(p)
		if err != nil {
			return
		}
		defer s.Close()
		for i := 0; i < 10000; i++ {
			if _, _, err := s.ReadPacketData(); err != nil {
				return
			}
		}
	})
}
