package live

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// pkt describes a packet to serialise for the filter table.
type pkt struct {
	v6       bool
	udp      bool
	vlan     bool
	raw      bool // no Ethernet header
	src, dst string
	sport    uint16
	dport    uint16
	frag     bool // a later IPv4 fragment
}

func (p pkt) bytes(t *testing.T) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	ethType := layers.EthernetTypeIPv4
	if p.v6 {
		ethType = layers.EthernetTypeIPv6
	}
	if !p.raw {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 1, 2, 3, 4, 5}, DstMAC: net.HardwareAddr{0, 1, 2, 3, 4, 6}, EthernetType: ethType}
		if p.vlan {
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append(ls, eth, &layers.Dot1Q{VLANIdentifier: 7, Type: ethType})
		} else {
			ls = append(ls, eth)
		}
	}
	proto := layers.IPProtocolTCP
	if p.udp {
		proto = layers.IPProtocolUDP
	}
	var nl gopacket.NetworkLayer
	if p.v6 {
		ip := &layers.IPv6{Version: 6, NextHeader: proto, HopLimit: 64, SrcIP: net.ParseIP(p.src), DstIP: net.ParseIP(p.dst)}
		ls, nl = append(ls, ip), ip
	} else {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(p.src).To4(), DstIP: net.ParseIP(p.dst).To4()}
		if p.frag {
			ip.FragOffset = 100
		}
		ls, nl = append(ls, ip), ip
	}
	if p.udp {
		u := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		u.SetNetworkLayerForChecksum(nl)
		ls = append(ls, u)
	} else {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Window: 1000, ACK: true,
			Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}}}
		tcp.SetNetworkLayerForChecksum(nl)
		ls = append(ls, tcp)
	}
	ls = append(ls, gopacket.Payload("GET / HTTP/1.1\r\n\r\n"))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFilter(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	web := FilterSpec{Ports: []uint16{8080, 9000}}
	hosts := FilterSpec{Ports: []uint16{8080}, Hosts: addrs("10.0.0.1", "fd00::1")}
	only4 := FilterSpec{Hosts: addrs("10.0.0.1")}
	tests := []struct {
		name string
		spec FilterSpec
		p    pkt
		keep bool
	}{
		// IPv4 TCP to a wanted port.
		{"v4 dst port", web, pkt{src: "10.0.0.2", dst: "10.0.0.1", sport: 40000, dport: 8080}, true},
		// The response direction: the port is the source.
		{"v4 src port", web, pkt{src: "10.0.0.1", dst: "10.0.0.2", sport: 9000, dport: 40000}, true},
		// Another port is dropped.
		{"v4 other port", web, pkt{src: "10.0.0.2", dst: "10.0.0.1", sport: 40000, dport: 22}, false},
		// UDP to the wanted port is dropped.
		{"udp", web, pkt{udp: true, src: "10.0.0.2", dst: "10.0.0.1", sport: 40000, dport: 8080}, false},
		// A later fragment has no ports to check.
		{"v4 fragment", web, pkt{frag: true, src: "10.0.0.2", dst: "10.0.0.1", sport: 40000, dport: 8080}, false},
		// IPv6 both directions.
		{"v6 dst port", web, pkt{v6: true, src: "fd00::2", dst: "fd00::1", sport: 40000, dport: 9000}, true},
		{"v6 src port", web, pkt{v6: true, src: "fd00::1", dst: "fd00::2", sport: 8080, dport: 40000}, true},
		{"v6 other port", web, pkt{v6: true, src: "fd00::2", dst: "fd00::1", sport: 40000, dport: 443}, false},
		// An 802.1Q tag the NIC left in place.
		{"vlan v4", web, pkt{vlan: true, src: "10.0.0.2", dst: "10.0.0.1", sport: 40000, dport: 8080}, true},
		{"vlan v6 other", web, pkt{vlan: true, v6: true, src: "fd00::2", dst: "fd00::1", sport: 1, dport: 2}, false},
		// Hosts: source or destination in the set, and the port too.
		{"host dst", hosts, pkt{src: "10.0.0.9", dst: "10.0.0.1", sport: 40000, dport: 8080}, true},
		{"host src", hosts, pkt{src: "10.0.0.1", dst: "10.0.0.9", sport: 8080, dport: 40000}, true},
		{"host other", hosts, pkt{src: "10.0.0.8", dst: "10.0.0.9", sport: 8080, dport: 40000}, false},
		{"host right, port wrong", hosts, pkt{src: "10.0.0.1", dst: "10.0.0.9", sport: 8081, dport: 40000}, false},
		{"host v6", hosts, pkt{v6: true, src: "fd00::9", dst: "fd00::1", sport: 40000, dport: 8080}, true},
		{"host v6 other", hosts, pkt{v6: true, src: "fd00::9", dst: "fd00::2", sport: 40000, dport: 8080}, false},
		// Only IPv4 hosts given: IPv6 is dropped whole.
		{"v4 hosts drop v6", only4, pkt{v6: true, src: "fd00::9", dst: "fd00::1", sport: 1, dport: 2}, false},
		{"v4 hosts any port", only4, pkt{src: "10.0.0.1", dst: "10.0.0.3", sport: 1, dport: 2}, true},
		// No ports or hosts: any TCP.
		{"any tcp", FilterSpec{}, pkt{src: "1.2.3.4", dst: "5.6.7.8", sport: 1, dport: 2}, true},
		{"any tcp not udp", FilterSpec{}, pkt{udp: true, src: "1.2.3.4", dst: "5.6.7.8", sport: 1, dport: 2}, false},
		// Raw IP links (tun): no Ethernet header.
		{"raw v4", FilterSpec{Link: LinkRawIP, Ports: []uint16{8080}}, pkt{raw: true, src: "10.0.0.2", dst: "10.0.0.1", sport: 1, dport: 8080}, true},
		{"raw v6", FilterSpec{Link: LinkRawIP, Ports: []uint16{8080}}, pkt{raw: true, v6: true, src: "fd00::2", dst: "fd00::1", sport: 8080, dport: 1}, true},
		{"raw other", FilterSpec{Link: LinkRawIP, Ports: []uint16{8080}}, pkt{raw: true, src: "10.0.0.2", dst: "10.0.0.1", sport: 1, dport: 80}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Snaplen = 96
			ins, err := tt.spec.Build()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bpf.Assemble(ins); err != nil {
				t.Fatal(err)
			}
			vm, err := bpf.NewVM(ins)
			if err != nil {
				t.Fatal(err)
			}
			data := tt.p.bytes(t)
			n, err := vm.Run(data)
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != tt.keep {
				t.Fatalf("kept %d bytes, want keep=%v\n%v", n, tt.keep, ins)
			}
			if n > 0 && n != 96 && n != len(data) {
				t.Fatalf("kept %d bytes, want the snaplen", n)
			}
		})
	}
}

func TestFilterLimits(t *testing.T) {
	var many []uint16
	for p := range 300 {
		many = append(many, uint16(p+1))
	}
	if _, err := (FilterSpec{Ports: many}).Build(); err == nil {
		t.Fatal("a filter with jumps over 255 instructions was built")
	}
	ins, err := FilterSpec{DropOutgoing: true, Ports: []uint16{80}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bpf.Assemble(ins); err != nil {
		t.Fatal(err)
	}
	if got := (FilterSpec{Ports: []uint16{80, 443}, Hosts: []netip.Addr{netip.MustParseAddr("::1")}, DropOutgoing: true}).String(); got != "tcp and (port 80 or port 443) and (host ::1) and inbound" {
		t.Fatalf("String() = %q", got)
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"no interface", Config{}, false},                                                   // an interface is required
		{"defaults", Config{Interface: "lo"}, true},                                         // zero values take defaults
		{"tiny snaplen", Config{Interface: "lo", Snaplen: 10}, false},                       // too short for headers
		{"tiny ring", Config{Interface: "lo", RingSize: 4096}, false},                       // less than two blocks
		{"expr and ports", Config{Interface: "lo", Expr: "tcp", Ports: []uint16{1}}, false}, // one or the other
		{"port zero", Config{Interface: "lo", Ports: []uint16{0}}, false},                   // not a port
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cfg.check(); (err == nil) != tt.ok {
				t.Fatalf("check() = %v", err)
			}
		})
	}
}
