//go:build pcap && cgo && linux

package live

import (
	"fmt"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// compileExpr compiles a tcpdump-syntax filter with libpcap, for builds
// made with -tags pcap.
func compileExpr(link layers.LinkType, snaplen int, expr string) ([]bpf.RawInstruction, error) {
	ins, err := pcap.CompileBPFFilter(link, snaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("filter expression %q: %w", expr, err)
	}
	raw := make([]bpf.RawInstruction, len(ins))
	for i, in := range ins {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return raw, nil
}
