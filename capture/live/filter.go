package live

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// Link is the framing of packets on an interface, which decides where the
// IP header starts for the kernel filter.
type Link int

// The link framings the filter builder knows.
const (
	// LinkEthernet: a 14-byte Ethernet header (also Linux loopback), with
	// an optional 802.1Q or 802.1ad tag when the NIC did not strip it.
	LinkEthernet Link = iota
	// LinkRawIP: packets start with the IP header (tun devices, WireGuard).
	LinkRawIP
)

// FilterSpec is what the kernel filter keeps: TCP over IPv4 or IPv6 whose
// source or destination port is in Ports (any port when empty) and whose
// source or destination address is in Hosts (any address when empty).
// Everything else is dropped in the kernel, before it costs a copy.
type FilterSpec struct {
	Link    Link
	Ports   []uint16
	Hosts   []netip.Addr
	Snaplen uint32 // bytes kept per packet; 0 keeps whole packets
	// DropOutgoing drops packets the host sends (PACKET_OUTGOING). On
	// loopback every packet is seen twice, once leaving and once
	// arriving; dropping the outgoing copy counts each once. It uses a
	// Linux BPF extension that the x/net/bpf VM cannot run.
	DropOutgoing bool
}

// String describes the filter in tcpdump's words, for the recording's
// metadata.
func (f FilterSpec) String() string {
	parts := []string{"tcp"}
	if len(f.Ports) > 0 {
		var ps []string
		for _, p := range f.Ports {
			ps = append(ps, "port "+strconv.Itoa(int(p)))
		}
		parts = append(parts, "("+strings.Join(ps, " or ")+")")
	}
	if len(f.Hosts) > 0 {
		var hs []string
		for _, h := range f.Hosts {
			hs = append(hs, "host "+h.String())
		}
		parts = append(parts, "("+strings.Join(hs, " or ")+")")
	}
	s := strings.Join(parts, " and ")
	if f.DropOutgoing {
		s += " and inbound"
	}
	return s
}

// Build assembles the classic BPF program for f.
func (f FilterSpec) Build() ([]bpf.Instruction, error) {
	if f.Snaplen == 0 {
		f.Snaplen = 1<<32 - 1
	}
	var v4, v6 []netip.Addr
	for _, h := range f.Hosts {
		h = h.Unmap()
		if h.Is4() {
			v4 = append(v4, h)
		} else {
			v6 = append(v6, h)
		}
	}
	a := &asm{}
	reject := bpf.RetConstant{Val: 0}
	if f.DropOutgoing {
		a.op(bpf.LoadExtension{Num: bpf.ExtType})
		a.jeq(4, "", "link") // PACKET_OUTGOING
		a.op(reject)
		a.label("link")
	}
	switch f.Link {
	case LinkEthernet:
		a.op(bpf.LoadAbsolute{Off: 12, Size: 2})
		a.jeq(0x8100, "vlan", "")
		a.jeq(0x88a8, "vlan", "")
		a.jeq(0x0800, "ip4@14", "")
		a.jeq(0x86dd, "ip6@14", "")
		a.op(reject)
		a.label("vlan")
		a.op(bpf.LoadAbsolute{Off: 16, Size: 2})
		a.jeq(0x0800, "ip4@18", "")
		a.jeq(0x86dd, "ip6@18", "")
		a.op(reject)
		f.ipv4(a, 14, v4)
		f.ipv6(a, 14, v6)
		f.ipv4(a, 18, v4)
		f.ipv6(a, 18, v6)
	case LinkRawIP:
		a.op(bpf.LoadAbsolute{Off: 0, Size: 1})
		a.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
		a.jeq(4, "ip4@0", "")
		a.jeq(6, "ip6@0", "")
		a.op(reject)
		f.ipv4(a, 0, v4)
		f.ipv6(a, 0, v6)
	default:
		return nil, fmt.Errorf("unknown link framing %d", f.Link)
	}
	return a.resolve()
}

// ipv4 emits the block for an IPv4 header at off: TCP, not a later
// fragment, host and port checks.
func (f FilterSpec) ipv4(a *asm, off uint32, hosts []netip.Addr) {
	blk := fmt.Sprintf("ip4@%d", off)
	a.label(blk)
	defer f.ends(a, blk)
	accept, reject := "acc/"+blk, "rej/"+blk
	if len(f.Hosts) > 0 && len(hosts) == 0 {
		a.jmp(reject) // hosts were given, none of them IPv4
		return
	}
	a.op(bpf.LoadAbsolute{Off: off + 9, Size: 1})
	a.jeq(6, "", reject)
	// A later fragment has no TCP header to read ports from.
	a.op(bpf.LoadAbsolute{Off: off + 6, Size: 2})
	a.op(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 0, SkipFalse: 0})
	a.fix(len(a.ins)-1, reject, "")
	if len(hosts) > 0 {
		ok := fmt.Sprintf("ip4h@%d", off)
		for _, base := range []uint32{12, 16} {
			a.op(bpf.LoadAbsolute{Off: off + base, Size: 4})
			for _, h := range hosts {
				b := h.As4()
				a.jeq(binary.BigEndian.Uint32(b[:]), ok, "")
			}
		}
		a.jmp(reject)
		a.label(ok)
	}
	a.op(bpf.LoadMemShift{Off: off})
	f.portChecks(a, off, accept, reject)
}

// ipv6 emits the block for an IPv6 header at off. Only TCP directly after
// the fixed header is matched; packets with extension headers are
// dropped (they are rare in HTTP traffic and documented).
func (f FilterSpec) ipv6(a *asm, off uint32, hosts []netip.Addr) {
	blk := fmt.Sprintf("ip6@%d", off)
	a.label(blk)
	defer f.ends(a, blk)
	accept, reject := "acc/"+blk, "rej/"+blk
	if len(f.Hosts) > 0 && len(hosts) == 0 {
		a.jmp(reject)
		return
	}
	a.op(bpf.LoadAbsolute{Off: off + 6, Size: 1})
	a.jeq(6, "", reject)
	if len(hosts) > 0 {
		ok := fmt.Sprintf("ip6h@%d", off)
		for _, base := range []uint32{8, 24} {
			for hi, h := range hosts {
				b := h.As16()
				next := fmt.Sprintf("ip6n@%d/%d/%d", off, base, hi)
				for w := range 4 {
					a.op(bpf.LoadAbsolute{Off: off + base + uint32(4*w), Size: 4})
					target := ""
					if w == 3 {
						target = ok
					}
					a.jeq(binary.BigEndian.Uint32(b[4*w:]), target, next)
				}
				a.label(next)
			}
		}
		a.jmp(reject)
		a.label(ok)
	}
	// X = 40, the fixed header, so the port loads below match IPv4's.
	a.op(bpf.LoadConstant{Dst: bpf.RegX, Val: 40})
	f.portChecks(a, off, accept, reject)
}

// ends emits a block's own accept and reject returns, close to its
// jumps so their 8-bit skips stay short.
func (f FilterSpec) ends(a *asm, blk string) {
	a.label("acc/" + blk)
	a.op(bpf.RetConstant{Val: f.Snaplen})
	a.label("rej/" + blk)
	a.op(bpf.RetConstant{Val: 0})
}

// portChecks tests the TCP ports at X+off (source) and X+off+2
// (destination) against f.Ports.
func (f FilterSpec) portChecks(a *asm, off uint32, accept, reject string) {
	if len(f.Ports) == 0 {
		a.jmp(accept)
		return
	}
	for _, base := range []uint32{0, 2} {
		a.op(bpf.LoadIndirect{Off: off + base, Size: 2})
		for _, p := range f.Ports {
			a.jeq(uint32(p), accept, "")
		}
	}
	a.jmp(reject)
}

// asm is a tiny assembler: instructions with symbolic jump targets,
// resolved to the relative skips classic BPF wants.
type asm struct {
	ins    []bpf.Instruction
	jumps  map[int][2]string // index -> true, false targets ("" = next)
	labels map[string]int
	err    error
}

func (a *asm) op(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	if _, dup := a.labels[name]; dup && a.err == nil {
		a.err = fmt.Errorf("filter assembler: duplicate label %s", name)
	}
	a.labels[name] = len(a.ins)
}

func (a *asm) fix(i int, t, f string) {
	if a.jumps == nil {
		a.jumps = map[int][2]string{}
	}
	a.jumps[i] = [2]string{t, f}
}

func (a *asm) jeq(v uint32, t, f string) {
	a.op(bpf.JumpIf{Cond: bpf.JumpEqual, Val: v})
	a.fix(len(a.ins)-1, t, f)
}

func (a *asm) jmp(t string) {
	a.op(bpf.Jump{})
	a.fix(len(a.ins)-1, t, "")
}

func (a *asm) resolve() ([]bpf.Instruction, error) {
	if a.err != nil {
		return nil, a.err
	}
	skip := func(from int, target string) (uint32, error) {
		if target == "" {
			return 0, nil
		}
		to, ok := a.labels[target]
		if !ok {
			return 0, fmt.Errorf("filter assembler: no label %s", target)
		}
		d := to - from - 1
		if d < 0 {
			return 0, fmt.Errorf("filter assembler: backward jump to %s", target)
		}
		return uint32(d), nil
	}
	for i, tf := range a.jumps {
		t, err := skip(i, tf[0])
		if err != nil {
			return nil, err
		}
		f, err := skip(i, tf[1])
		if err != nil {
			return nil, err
		}
		switch in := a.ins[i].(type) {
		case bpf.JumpIf:
			if t > 255 || f > 255 {
				return nil, fmt.Errorf("filter too large: a jump spans %d instructions; give fewer ports or hosts", max(t, f))
			}
			in.SkipTrue, in.SkipFalse = uint8(t), uint8(f)
			a.ins[i] = in
		case bpf.Jump:
			a.ins[i] = bpf.Jump{Skip: t}
		}
	}
	if len(a.ins) > 4096 {
		return nil, fmt.Errorf("filter too large (%d instructions); give fewer ports or hosts", len(a.ins))
	}
	return a.ins, nil
}
