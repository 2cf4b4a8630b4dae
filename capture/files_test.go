package capture

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/klauspost/compress/gzip"

	"github.com/reprise-tool/reprise/capture/pcapfile"
)

// TestLinkTypes writes real pcap and pcapng files for each supported link
// type with pcapgo and reads them back through pcapfile.
func TestLinkTypes(t *testing.T) {
	tests := []struct {
		name string
		link layers.LinkType
		vlan bool
		v6   bool
		ng   bool
		gz   bool
	}{
		{name: "ethernet pcap", link: layers.LinkTypeEthernet},                              // tcpdump -i eth0
		{name: "ethernet vlan pcapng", link: layers.LinkTypeEthernet, vlan: true, ng: true}, // Wireshark on a trunk
		{name: "linux cooked SLL", link: layers.LinkTypeLinuxSLL},                           // tcpdump -i any (older)
		{name: "linux cooked SLL2 v6", link: layers.LinkTypeLinuxSLL2, v6: true},            // tcpdump -i any (libpcap 1.10+)
		{name: "raw IPv4", link: layers.LinkTypeRaw},                                        // tun devices
		{name: "raw IPv6", link: layers.LinkTypeRaw, v6: true},
		{name: "BSD loopback", link: layers.LinkTypeNull}, // tcpdump -i lo0 on macOS
		{name: "BSD loopback v6 pcapng", link: layers.LinkTypeNull, v6: true, ng: true},
		{name: "gzip pcap", link: layers.LinkTypeEthernet, gz: true}, // compressed archives
		{name: "gzip pcapng", link: layers.LinkTypeLinuxSLL, gz: true, ng: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrace(tt.link)
			tr.vlan = tt.vlan
			cli, srv := "10.1.1.1:50000", "10.1.1.2:8080"
			if tt.v6 {
				cli, srv = "[2001:db8::1]:50000", "[2001:db8::2]:8080"
			}
			c := tr.conn(cli, srv)
			c.handshake()
			c.send(true, reqB)
			c.send(false, respB)
			c.fin(true)
			c.fin(false)
			path := filepath.Join(t.TempDir(), "c.pcap")
			tr.writePcap(t, path, tt.ng)
			if tt.gz {
				gzipFile(t, path)
			}
			got, cnt := collectFile(t, path)
			want := `1/0 POST /b "xyz" -> 201 "ok"`
			if len(got) != 1 || line(got[0]) != want {
				t.Fatalf("got %q, want %q (counters %+v)", lines(got), want, cnt)
			}
			if got[0].Conn.Client.String() != cli || got[0].Conn.Server.String() != srv {
				t.Errorf("conn = %+v", got[0].Conn)
			}
			if cnt.PacketsMalformed != 0 || cnt.PacketsSeen != uint64(len(tr.pkts)) {
				t.Errorf("counters = %+v", cnt)
			}
		})
	}
}

func gzipFile(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestFilesMerged reads two files of different link types, given by a
// glob, whose packets interleave in time: the exchanges come out whole.
func TestFilesMerged(t *testing.T) {
	dir := t.TempDir()
	a := newTrace(layers.LinkTypeEthernet)
	b := newTrace(layers.LinkTypeLinuxSLL2)
	ca := a.conn("10.0.0.1:40000", "10.0.0.2:8080")
	cb := b.conn("10.0.0.9:40000", "10.0.0.2:8080")
	ca.handshake()
	b.tick(500 * time.Microsecond)
	cb.handshake()
	ca.send(true, reqA)
	b.tick(time.Millisecond)
	cb.send(true, reqB)
	a.tick(5 * time.Millisecond)
	ca.send(false, respA)
	b.tick(5 * time.Millisecond)
	cb.send(false, respB)
	a.writePcap(t, filepath.Join(dir, "cap-1.pcap"), false)
	b.writePcap(t, filepath.Join(dir, "cap-2.pcap"), true)
	got, _ := collectFile(t, filepath.Join(dir, "cap-*.pcap"))
	want := `1/0 GET /a "" -> 200 "hello"` + "\n" + `2/0 POST /b "xyz" -> 201 "ok"`
	if strings.Join(lines(got), "\n") != want {
		t.Errorf("got %q", lines(got))
	}
}

// TestBadFiles checks errors name the file and keep what was read.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	notPcap := filepath.Join(dir, "notes.txt")
	os.WriteFile(notPcap, []byte("hello, this is not a capture"), 0o644)
	if _, err := pcapfile.Open(notPcap); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("Open(text) = %v, want an error naming the file", err)
	}
	if _, err := pcapfile.Open(filepath.Join(dir, "none-*.pcap")); err == nil || !strings.Contains(err.Error(), "no file matches") {
		t.Errorf("Open(no match) = %v", err)
	}
	// A file cut inside its last packet: the exchange before is kept and
	// the error says where.
	tr := newTrace(layers.LinkTypeEthernet)
	c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
	c.handshake()
	c.send(true, reqA)
	c.send(false, respA)
	c.fin(true)
	c.fin(false)
	c.send(true, strings.Repeat("x", 500))
	cut := filepath.Join(dir, "cut.pcap")
	tr.writePcap(t, cut, false)
	raw, _ := os.ReadFile(cut)
	os.WriteFile(cut, raw[:len(raw)-100], 0o644)
	src, err := pcapfile.Open(cut)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p, err := FromPackets(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	x, err := p.Next()
	if err != nil || line(x) != `1/0 GET /a "" -> 200 "hello"` {
		t.Fatalf("first = %v, %v", x, err)
	}
	_, err = p.Next()
	if err == nil || !strings.Contains(err.Error(), "cut.pcap") || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("error = %v, want one naming cut.pcap", err)
	}
}
