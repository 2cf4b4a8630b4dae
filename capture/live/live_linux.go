//go:build linux

package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/reprise-tool/reprise/capture"
)

// pollTimeout bounds each wait for packets, so a read notices a cancelled
// context or Close within this time.
const pollTimeout = 100 * time.Millisecond

// Source reads packets from an interface. ReadPacketData is meant for one
// goroutine; Drops, Close and the accessors may be called from any.
type Source struct {
	cfg     Config
	tp      *afpacket.TPacket
	link    layers.LinkType
	version afpacket.OptTPacketVersion
	notes   []string
	filter  string

	// vm re-checks packets that reached the ring before the kernel filter
	// was attached; attached is when it was.
	vm       *bpf.VM
	attached time.Time

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.RWMutex // Close holds it to free the ring; readers share it
	closed atomic.Bool

	lastRecv, lastDrop atomic.Uint64 // cumulative kernel stats, kept after Close
}

var (
	_ capture.PacketSource = (*Source)(nil)
	_ capture.DropCounter  = (*Source)(nil)
)

// Open starts capturing on cfg.Interface. The capture stops when ctx ends
// or Close is called; ReadPacketData then returns io.EOF.
func Open(ctx context.Context, cfg Config) (*Source, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	ifc, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w; available: %s", cfg.Interface, err, interfaceNames())
	}
	link, framing, err := linkOf(ifc)
	if err != nil {
		return nil, err
	}
	loopback := ifc.Flags&net.FlagLoopback != 0

	var prog []bpf.RawInstruction
	var vmProg []bpf.Instruction
	var desc string
	if cfg.Expr != "" {
		raw, err := compileExpr(link, cfg.Snaplen, cfg.Expr)
		if err != nil {
			return nil, err
		}
		desc = cfg.Expr
		vmProg = disassemble(raw)
		if loopback {
			// Prepend the outgoing-copy check; the program's jumps are
			// relative, so they stay right.
			head, _ := bpf.Assemble([]bpf.Instruction{
				bpf.LoadExtension{Num: bpf.ExtType},
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: 1},
				bpf.RetConstant{Val: 0},
			})
			raw = append(head, raw...)
			desc += " and inbound"
		}
		prog = raw
	} else {
		spec := FilterSpec{Link: framing, Ports: cfg.Ports, Hosts: cfg.Hosts, Snaplen: uint32(cfg.Snaplen), DropOutgoing: loopback}
		ins, err := spec.Build()
		if err != nil {
			return nil, err
		}
		if prog, err = bpf.Assemble(ins); err != nil {
			return nil, fmt.Errorf("assemble filter: %w", err)
		}
		spec.DropOutgoing = false
		vmProg, _ = spec.Build()
		desc = FilterSpec{Ports: cfg.Ports, Hosts: cfg.Hosts, DropOutgoing: loopback}.String()
	}

	s := &Source{cfg: cfg, link: link, filter: desc}
	if s.vm, err = bpf.NewVM(vmProg); err != nil {
		s.vm = nil // the kernel filter still applies; only the start-up window is unchecked
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	if err := s.tp.SetBPF(prog); err != nil {
		s.tp.Close()
		return nil, fmt.Errorf("attach kernel filter on %s: %w", cfg.Interface, err)
	}
	s.attached = time.Now()
	s.ctx, s.cancel = context.WithCancel(ctx)
	context.AfterFunc(s.ctx, func() { s.closed.Store(true) })
	return s, nil
}

// open creates the socket and ring, trying TPACKET_V3 first.
func (s *Source) open() error {
	var firstErr error
	for _, v := range []afpacket.OptTPacketVersion{afpacket.TPacketVersion3, afpacket.TPacketVersion2, afpacket.TPacketVersion1} {
		frame := 1 << 16
		if v == afpacket.TPacketVersion3 {
			frame = 1 << 12 // V3 packs packets into blocks; frames only index them
		} else if s.cfg.Snaplen > frame-128 {
			s.notes = append(s.notes, fmt.Sprintf("packets longer than %d bytes are truncated with %s", frame-128, v))
		}
		tp, err := afpacket.NewTPacket(
			afpacket.OptInterface(s.cfg.Interface),
			afpacket.OptTPacketVersion(v),
			afpacket.OptFrameSize(frame),
			afpacket.OptBlockSize(blockSize),
			afpacket.OptNumBlocks(s.cfg.RingSize/blockSize),
			afpacket.OptBlockTimeout(20*time.Millisecond),
			afpacket.OptPollTimeout(pollTimeout),
		)
		if err == nil {
			s.tp, s.version = tp, v
			if v != afpacket.TPacketVersion3 {
				s.notes = append(s.notes, fmt.Sprintf("the kernel refused a TPACKET_V3 ring (%v); using %s", firstErr, v))
			}
			return nil
		}
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return &PermissionError{Interface: s.cfg.Interface, Err: err}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return fmt.Errorf("open packet ring on %s: %w", s.cfg.Interface, firstErr)
}

// ReadPacketData returns the next packet; ErrTimeout when none arrived
// within 100ms (retry); and io.EOF once the context has ended or Close was
// called. The data is the caller's to keep.
func (s *Source) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for {
		if s.closed.Load() {
			return nil, gopacket.CaptureInfo{}, io.EOF
		}
		data, ci, err := s.tp.ReadPacketData()
		switch {
		case err == nil:
			if s.vm != nil && ci.Timestamp.Before(s.attached) {
				if n, verr := s.vm.Run(data); verr == nil && n == 0 {
					continue // arrived before the kernel filter was attached
				}
			}
			return data, ci, nil
		case errors.Is(err, afpacket.ErrTimeout):
			if s.closed.Load() {
				return nil, gopacket.CaptureInfo{}, io.EOF
			}
			return nil, gopacket.CaptureInfo{}, ErrTimeout
		case errors.Is(err, syscall.EINTR):
			continue
		default:
			if s.closed.Load() {
				return nil, gopacket.CaptureInfo{}, io.EOF
			}
			return nil, ci, fmt.Errorf("read packet on %s: %w", s.cfg.Interface, err)
		}
	}
}

// LinkType is the link layer of the packets returned.
func (s *Source) LinkType() layers.LinkType { return s.link }

// Drops returns the packets the kernel passed the filter (received) and
// those it dropped because the ring was full, cumulative since Open.
func (s *Source) Drops() (received, dropped uint64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.readStats()
}

// readStats asks the kernel, or returns the last answer once the socket
// is closed; it must run with s.mu held.
func (s *Source) readStats() (uint64, uint64, error) {
	if s.tp == nil {
		return s.lastRecv.Load(), s.lastDrop.Load(), nil
	}
	v1, v3, err := s.tp.SocketStats()
	if err != nil {
		return s.lastRecv.Load(), s.lastDrop.Load(), fmt.Errorf("read kernel drop counters on %s: %w", s.cfg.Interface, err)
	}
	recv, drop := uint64(v1.Packets()), uint64(v1.Drops())
	if s.version == afpacket.TPacketVersion3 {
		recv, drop = uint64(v3.Packets()), uint64(v3.Drops())
	}
	s.lastRecv.Store(recv)
	s.lastDrop.Store(drop)
	return recv, drop, nil
}

// Close stops the capture and frees the ring. The drop counters stay
// readable. It is safe to call more than once.
func (s *Source) Close() error {
	s.closed.Store(true)
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tp != nil {
		s.readStats()
		s.tp.Close()
		s.tp = nil
	}
	return nil
}

// Filter describes the kernel filter in force, for Metadata.Filter.
func (s *Source) Filter() string { return s.filter }

// Ring names the ring in use ("V3") and any notes about a
// fallback, for the status line.
func (s *Source) Ring() (version string, notes []string) {
	return s.version.String(), s.notes
}

// linkOf maps an interface's hardware type to the link layer of its
// packets and the framing the filter builder needs.
func linkOf(ifc *net.Interface) (layers.LinkType, Link, error) {
	b, err := os.ReadFile("/sys/class/net/" + ifc.Name + "/type")
	if err != nil {
		if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) == 6 {
			return layers.LinkTypeEthernet, LinkEthernet, nil
		}
		return 0, 0, fmt.Errorf("interface %s: cannot tell its link type: %w", ifc.Name, err)
	}
	switch t := strings.TrimSpace(string(b)); t {
	case "1", "772": // ARPHRD_ETHER, ARPHRD_LOOPBACK (which carries Ethernet headers)
		return layers.LinkTypeEthernet, LinkEthernet, nil
	case "65534": // ARPHRD_NONE: tun, WireGuard
		return layers.LinkTypeRaw, LinkRawIP, nil
	default:
		return 0, 0, fmt.Errorf("interface %s has link type %s, which live capture does not support; capture on an Ethernet, loopback or tun interface, or use 'reprise proxy'", ifc.Name, t)
	}
}

func interfaceNames() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "unknown"
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	return strings.Join(names, ", ")
}

// disassemble turns a raw program back into instructions for the VM;
// nil when an instruction is one the VM cannot run.
func disassemble(raw []bpf.RawInstruction) []bpf.Instruction {
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		return nil
	}
	return ins
}
