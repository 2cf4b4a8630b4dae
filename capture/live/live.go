// Package live captures packets from a network interface: AF_PACKET on
// Linux through gopacket's afpacket (pure Go, no cgo), reading a
// memory-mapped TPACKET_V3 ring where the kernel has one (falling back to
// V2, then V1), with a kernel BPF filter built from the ports and hosts
// asked for, so unwanted packets never cost a copy.
//
// A Source implements capture.PacketSource and capture.DropCounter: the
// packet pipeline reads it like a pcap file and reports the kernel's drops.
//
// On loopback every packet passes the capture point twice, leaving and
// arriving; the filter drops the outgoing copy in the kernel, so each is
// counted once.
//
// Live capture needs root or CAP_NET_RAW. Without it Open returns a
// *PermissionError that says so and points to 'reprise proxy' and --pcap,
// which need neither. On other systems Open returns ErrLinuxOnly.
//
// The built-in filter keeps TCP directly over IPv4 or IPv6, untagged or
// with one VLAN tag the NIC left in place (offloaded tags never reach the
// filter). It drops, by design: IPv6 packets with extension headers before
// TCP, frames with two VLAN tags, and later IPv4 fragments (they carry no
// ports). A raw expression can select those where they matter.
//
// A raw filter expression (tcpdump syntax) needs libpcap's compiler, so it
// is available only in binaries built with -tags pcap (cgo and libpcap-dev);
// otherwise Open returns ErrNoPcap and --port/--host are the way.
package live

import (
	"errors"
	"fmt"
	"net/netip"
)

// Config says what to capture.
type Config struct {
	// Interface to capture on ("eth0", "lo"). Required.
	Interface string
	// Ports and Hosts select TCP packets whose source or destination port
	// (and address) is in the set; empty means any.
	Ports []uint16
	Hosts []netip.Addr
	// Snaplen is how many bytes of each packet to keep; 0 means the
	// default, 262144 (whole packets, as tcpdump).
	Snaplen int
	// RingSize is the kernel ring's size in bytes; 0 means 64 MiB. A
	// larger ring rides out longer bursts before the kernel drops.
	RingSize int
	// Expr is a raw filter expression in tcpdump syntax, used instead of
	// Ports and Hosts. Needs a build with -tags pcap.
	Expr string
}

// Defaults for Config fields left zero.
const (
	DefaultSnaplen  = 262144
	DefaultRingSize = 64 << 20
	blockSize       = 1 << 20 // one TPACKET_V3 block; holds any loopback packet
)

// ErrTimeout is returned by ReadPacketData when no packet arrived within
// the poll interval (100ms). It is a net.Error whose Timeout is true, as
// gopacket's live sources report it: callers retry, and may use the pause
// to advance their idle timers while traffic is quiet.
var ErrTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "no packet within the poll interval" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// ErrLinuxOnly is returned by Open on systems without AF_PACKET.
var ErrLinuxOnly = errors.New("live capture is Linux-only; use 'reprise proxy' or --pcap")

// ErrNoPcap means a raw filter expression was given to a binary built
// without libpcap.
var ErrNoPcap = errors.New("a raw filter expression needs libpcap: build with -tags pcap (cgo and libpcap-dev), or filter with --port and --host")

// PermissionError means the process may not open a packet socket.
type PermissionError struct {
	Interface string
	Err       error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("live capture on %s needs root or CAP_NET_RAW (%v): run as root, grant it with 'sudo setcap cap_net_raw+ep $(command -v reprise)', or record without privileges with 'reprise proxy' or from a pcap file with --pcap", e.Interface, e.Err)
}

func (e *PermissionError) Unwrap() error { return e.Err }

func (c Config) check() (Config, error) {
	if c.Interface == "" {
		return c, errors.New("no interface given; name one such as eth0 or lo")
	}
	if c.Snaplen == 0 {
		c.Snaplen = DefaultSnaplen
	}
	if c.Snaplen < 128 || c.Snaplen > DefaultSnaplen {
		return c, fmt.Errorf("snaplen %d out of range; give 128 to %d", c.Snaplen, DefaultSnaplen)
	}
	if c.RingSize == 0 {
		c.RingSize = DefaultRingSize
	}
	if c.RingSize < 2*blockSize {
		return c, fmt.Errorf("ring size %d too small; give at least %d bytes", c.RingSize, 2*blockSize)
	}
	if c.Expr != "" && (len(c.Ports) > 0 || len(c.Hosts) > 0) {
		return c, errors.New("give either a filter expression or --port/--host, not both")
	}
	for _, p := range c.Ports {
		if p == 0 {
			return c, errors.New("port 0 is not a port to filter on")
		}
	}
	return c, nil
}
