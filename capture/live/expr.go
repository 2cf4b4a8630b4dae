//go:build !(pcap && cgo && linux)

package live

import (
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// compileExpr would compile a tcpdump-syntax filter; this build has no
// libpcap, so it says how to get one.
func compileExpr(layers.LinkType, int, string) ([]bpf.RawInstruction, error) {
	return nil, ErrNoPcap
}
