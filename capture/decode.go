package capture

import (
	"fmt"
	"hash/maphash"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// UnsupportedLinkTypeError is returned for a capture whose link type the
// pipeline cannot decode.
type UnsupportedLinkTypeError struct {
	LinkType layers.LinkType
}

func (e *UnsupportedLinkTypeError) Error() string {
	return fmt.Sprintf("capture: link type %s (%d) is not supported; capture on Ethernet, Linux cooked (SLL, SLL2), raw IP or BSD loopback", e.LinkType, int(e.LinkType))
}

// decoder turns packet bytes into an IP flow and a TCP layer with
// DecodingLayerParsers that reuse the same layer values: no allocation per
// packet.
type decoder struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	sll2    layers.LinuxSLL2
	loop    layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	ip6ext  layers.IPv6ExtensionSkipper
	tcp     layers.TCP
	decoded []gopacket.LayerType
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
}

func newDecoder() *decoder {
	return &decoder{parsers: make(map[gopacket.LayerType]*gopacket.DecodingLayerParser)}
}

// parser returns the parser whose first layer is first.
func (d *decoder) parser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	if p, ok := d.parsers[first]; ok {
		return p
	}
	p := gopacket.NewDecodingLayerParser(first,
		&d.eth, &d.dot1q, &d.sll, &d.sll2, &d.loop, &d.ip4, &d.ip6, &d.ip6ext, &d.tcp)
	p.IgnoreUnsupported = true
	d.parsers[first] = p
	return p
}

// firstLayer maps a link type to the layer its packets start with; raw IP
// link types are resolved per packet from the IP version.
func firstLayer(lt layers.LinkType, data []byte) (gopacket.LayerType, error) {
	switch lt {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet, nil
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL, nil
	case layers.LinkTypeLinuxSLL2:
		return layers.LayerTypeLinuxSLL2, nil
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback, nil
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14:
		if len(data) == 0 {
			return gopacket.LayerTypeZero, nil
		}
		switch data[0] >> 4 {
		case 4:
			return layers.LayerTypeIPv4, nil
		case 6:
			return layers.LayerTypeIPv6, nil
		}
		return gopacket.LayerTypeZero, nil
	}
	return gopacket.LayerTypeZero, &UnsupportedLinkTypeError{LinkType: lt}
}

// packetKind is what decode found.
type packetKind uint8

const (
	pktOther     packetKind = iota // not TCP over IP: ignored
	pktTCP                         // d.tcp and d.netFlow are set
	pktMalformed                   // could not be decoded
)

// decoded packet facts for the pipeline.
type tcpPacket struct {
	netFlow gopacket.Flow
	ip      []byte // the IP and TCP headers, for dedupe
	src     []byte // raw source address
	dst     []byte
}

// decode decodes data captured on link type lt.
func (d *decoder) decode(lt layers.LinkType, data []byte, out *tcpPacket) (packetKind, error) {
	first, err := firstLayer(lt, data)
	if err != nil {
		return pktMalformed, err
	}
	if first == gopacket.LayerTypeZero {
		return pktMalformed, nil
	}
	if err := d.parser(first).DecodeLayers(data, &d.decoded); err != nil {
		return pktMalformed, nil
	}
	var sawTCP, sawIP bool
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeTCP:
			sawTCP = true
		case layers.LayerTypeIPv4:
			sawIP = true
			if d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
				// IP fragments are not reassembled: TCP segments are
				// almost never fragmented, and such a packet is counted
				// as malformed rather than half-read.
				return pktMalformed, nil
			}
			out.netFlow = d.ip4.NetworkFlow()
			out.ip = d.ip4.Contents
			out.src, out.dst = d.ip4.SrcIP, d.ip4.DstIP
		case layers.LayerTypeIPv6:
			sawIP = true
			out.netFlow = d.ip6.NetworkFlow()
			out.ip = d.ip6.Contents
			out.src, out.dst = d.ip6.SrcIP, d.ip6.DstIP
		}
	}
	if !sawTCP || !sawIP {
		return pktOther, nil
	}
	// The IP and TCP headers are adjacent; together they identify the
	// packet (IP id, sequence and acknowledgment numbers, and the TCP
	// checksum, which covers the payload), so the dedupe key need not hash
	// the payload.
	if n := len(out.ip) + len(d.tcp.Contents); cap(out.ip) >= n {
		out.ip = out.ip[:n]
	}
	return pktTCP, nil
}

// deduper drops packets identical to one of the last n seen.
type deduper struct {
	seed maphash.Seed
	ring []uint64
	pos  int
	seen map[uint64]int // hash -> copies in ring
}

func newDeduper(n int) *deduper {
	if n <= 0 {
		return nil
	}
	return &deduper{seed: maphash.MakeSeed(), ring: make([]uint64, n), seen: make(map[uint64]int, n)}
}

// duplicate reports whether b was among the last packets, and remembers it.
func (d *deduper) duplicate(b []byte) bool {
	h := maphash.Bytes(d.seed, b) | 1 // 0 marks an empty ring slot
	if d.seen[h] > 0 {
		return true
	}
	if old := d.ring[d.pos]; old != 0 {
		if d.seen[old] <= 1 {
			delete(d.seen, old)
		} else {
			d.seen[old]--
		}
	}
	d.ring[d.pos] = h
	d.seen[h]++
	d.pos = (d.pos + 1) % len(d.ring)
	return false
}
