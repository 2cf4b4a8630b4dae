package capture

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// This file builds real packets with gopacket serialisation: TCP
// connections over IPv4 or IPv6, framed for each link type, kept in memory
// or written to pcap and pcapng files.

type packet struct {
	data []byte
	ci   gopacket.CaptureInfo
}

// trace is a capture being built: packets with a clock.
type trace struct {
	link layers.LinkType
	vlan bool // Ethernet frames carry an 802.1Q tag
	now  time.Time
	pkts []packet
	buf  gopacket.SerializeBuffer
}

func newTrace(link layers.LinkType) *trace {
	return &trace{link: link, now: time.Unix(1_700_000_000, 0), buf: gopacket.NewSerializeBuffer()}
}

// tick advances the clock.
func (tr *trace) tick(d time.Duration) { tr.now = tr.now.Add(d) }

// add frames an IP packet for the trace's link type and appends it.
func (tr *trace) add(ip []byte, v6 bool) {
	var frame []byte
	switch tr.link {
	case layers.LinkTypeEthernet:
		et := layers.EthernetTypeIPv4
		if v6 {
			et = layers.EthernetTypeIPv6
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: et}
		ls := []gopacket.SerializableLayer{eth}
		if tr.vlan {
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: 42, Type: et})
		}
		ls = append(ls, gopacket.Payload(ip))
		if err := gopacket.SerializeLayers(tr.buf, gopacket.SerializeOptions{}, ls...); err != nil {
			panic(err)
		}
		frame = append([]byte(nil), tr.buf.Bytes()...)
	case layers.LinkTypeLinuxSLL:
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[2:], 772) // ARPHRD_LOOPBACK
		binary.BigEndian.PutUint16(h[4:], 6)
		binary.BigEndian.PutUint16(h[14:], ethType(v6))
		frame = append(h, ip...)
	case layers.LinkTypeLinuxSLL2:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], ethType(v6))
		binary.BigEndian.PutUint32(h[4:], 1)
		binary.BigEndian.PutUint16(h[8:], 772)
		h[11] = 6
		frame = append(h, ip...)
	case layers.LinkTypeNull:
		h := make([]byte, 4)
		fam := uint32(2)
		if v6 {
			fam = 30 // AF_INET6 on darwin
		}
		binary.LittleEndian.PutUint32(h, fam)
		frame = append(h, ip...)
	default: // raw IP
		frame = append([]byte(nil), ip...)
	}
	tr.pkts = append(tr.pkts, packet{data: frame, ci: gopacket.CaptureInfo{Timestamp: tr.now, CaptureLength: len(frame), Length: len(frame)}})
}

func ethType(v6 bool) uint16 {
	if v6 {
		return 0x86dd
	}
	return 0x0800
}

// conn is one TCP connection in a trace.
type conn struct {
	tr         *trace
	cli, srv   netip.AddrPort
	cseq, sseq uint32
	ipid       uint16
}

func (tr *trace) conn(cli, srv string) *conn {
	return &conn{tr: tr, cli: netip.MustParseAddrPort(cli), srv: netip.MustParseAddrPort(srv), cseq: 1000, sseq: 5000}
}

// segment builds one TCP segment without touching the sequence state.
func (c *conn) segment(fromClient bool, seq uint32, flags string, payload []byte) []byte {
	src, dst := c.cli, c.srv
	ack := c.sseq
	if !fromClient {
		src, dst = c.srv, c.cli
		ack = c.cseq
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, Ack: ack, Window: 65535}
	for _, f := range flags {
		switch f {
		case 'S':
			tcp.SYN = true
		case 'A':
			tcp.ACK = true
		case 'F':
			tcp.FIN = true
		case 'R':
			tcp.RST = true
		case 'P':
			tcp.PSH = true
		}
	}
	c.ipid++
	var ipl gopacket.NetworkLayer
	if src.Addr().Is4() {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Id: c.ipid, Flags: layers.IPv4DontFragment,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		ipl = ip
		tcp.SetNetworkLayerForChecksum(ip)
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		ipl = ip
		tcp.SetNetworkLayerForChecksum(ip)
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ipl.(gopacket.SerializableLayer), tcp, gopacket.Payload(payload))
	if err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func (c *conn) v6() bool { return !c.cli.Addr().Is4() }

// emit adds a segment to the trace.
func (c *conn) emit(seg []byte) { c.tr.add(seg, c.v6()) }

func (c *conn) handshake() {
	c.emit(c.segment(true, c.cseq, "S", nil))
	c.cseq++
	c.tr.tick(time.Millisecond)
	c.emit(c.segment(false, c.sseq, "SA", nil))
	c.sseq++
	c.tr.tick(time.Millisecond)
	c.emit(c.segment(true, c.cseq, "A", nil))
}

// send sends data in segments of at most mss bytes and returns them, so a
// test can reorder or drop some before they are added.
func (c *conn) segments(fromClient bool, data string, mss int) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(mss, len(data))
		seq := &c.cseq
		if !fromClient {
			seq = &c.sseq
		}
		out = append(out, c.segment(fromClient, *seq, "PA", []byte(data[:n])))
		*seq += uint32(n)
		data = data[n:]
	}
	return out
}

// send sends data in segments of at most 1400 bytes, 100µs apart.
func (c *conn) send(fromClient bool, data string) {
	for _, s := range c.segments(fromClient, data, 1400) {
		c.emit(s)
		c.tr.tick(100 * time.Microsecond)
	}
}

func (c *conn) fin(fromClient bool) {
	if fromClient {
		c.emit(c.segment(true, c.cseq, "FA", nil))
		c.cseq++
	} else {
		c.emit(c.segment(false, c.sseq, "FA", nil))
		c.sseq++
	}
}

func (c *conn) rst(fromClient bool) {
	if fromClient {
		c.emit(c.segment(true, c.cseq, "RA", nil))
	} else {
		c.emit(c.segment(false, c.sseq, "RA", nil))
	}
}

// memSource replays a trace's packets.
type memSource struct {
	tr *trace
	i  int
}

func (m *memSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if m.i >= len(m.tr.pkts) {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	p := m.tr.pkts[m.i]
	m.i++
	return p.data, p.ci, nil
}

func (m *memSource) LinkType() layers.LinkType { return m.tr.link }

// writePcap writes the trace as a pcap (or, with ng, pcapng) file.
func (tr *trace) writePcap(t testing.TB, path string, ng bool) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ng {
		w, err := pcapgo.NewNgWriter(f, tr.link)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range tr.pkts {
			if err := w.WritePacket(p.ci, p.data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65536, tr.link); err != nil {
		t.Fatal(err)
	}
	for _, p := range tr.pkts {
		if err := w.WritePacket(p.ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
}
