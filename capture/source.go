// Package capture turns traffic into exchanges and exchanges into
// recordings.
//
// # Sources
//
// Every source of exchanges has one shape, session.Source (Next until
// io.EOF), as gopacket's PacketDataSource is one shape for files and
// interfaces. Packets from a pcap file (capture/pcapfile) or a live
// interface (capture/live) become exchanges through a Pipeline
// (FromPackets): decoded, reassembled into TCP streams and parsed as
// HTTP/1.x. The recording proxy (capture/proxy) produces exchanges
// directly. A Pipe turns a stream some other reader pushes (a shadow
// mirror) back into a source.
//
// # The recording loop
//
// Record is the one loop that writes a recording, whatever the source, as
// vegeta has one Attack loop for every Targeter: it redacts each exchange
// (WithRedactor), gives it its session and token events (WithSessions),
// writes it and the sessions' timelines to the sink, keeps the counters in
// the metadata as they change (from the source when it is a
// CounterSource), and at the end writes the final metadata (host, session
// rules, the redaction rules that fired, the traffic's start and end) and
// closes the sink. 'reprise capture', 'reprise proxy' (proxy.Record),
// 'reprise shadow -o' and the demo all record through it, so their
// recordings cannot drift apart. Sources differ; the loop does not.
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
