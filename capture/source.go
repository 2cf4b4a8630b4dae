// Package capture turns traffic into exchanges: packets from a live
// interface or a pcap file are decoded, reassembled into TCP streams and
// parsed as HTTP/1.x; the recording proxy produces exchanges directly.
package capture

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// PacketSource is what the packet pipeline reads: gopacket's
// PacketDataSource plus the link type needed to decode the bytes. A pcap
// file and a live interface both provide it.
type PacketSource interface {
	gopacket.PacketDataSource
	LinkType() layers.LinkType
}

// DropCounter is implemented by sources that can lose packets before Reprise
// sees them (a kernel ring that overflowed). The pipeline reads it so drops
// are reported, never hidden.
type DropCounter interface {
	// Drops returns packets received and dropped by the kernel so far.
	Drops() (received, dropped uint64, err error)
}
