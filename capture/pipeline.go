package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/reprise-tool/reprise/capture/httpstream"
	"github.com/reprise-tool/reprise/capture/tlsdecrypt"
	"github.com/reprise-tool/reprise/session"
)

// Pipeline turns packets into exchanges: it decodes each packet, drops
// duplicates and packets outside the filter, reassembles TCP streams with
// gopacket's reassembly, parses them as HTTP/1.x and emits the exchanges in
// RequestStart order. It is a session.Source.
//
// All work happens in the goroutine that calls Next, one packet at a time:
// memory is held per open connection (its unparsed bytes, out-of-order
// segments up to a bound, and bodies up to the cap) and per exchange in the
// reorder window, never per byte of input. Counters may be called from any
// goroutine.
type Pipeline struct {
	ctx  context.Context
	src  PacketSource
	zc   zeroCopySource
	o    options
	dec  *decoder
	pkt  tcpPacket
	dd   *deduper
	asm  *reassembly.Assembler
	ord  *orderer
	actx asmContext

	clock     int64 // latest packet time, Unix ns
	lastFlush int64
	nextID    uint64
	done      bool
	err       error

	packets, dups, malformed atomic.Uint64

	// With hook workers: a batch whose funcs have run, and the next to
	// return from it; the batches given to the workers, oldest first; and
	// spare batches.
	ahead     []*session.Exchange
	aheadAt   []int // per exchange of ahead, its hookJob.at
	aheadHead int
	pool      *hookPool
	inflight  []*hookJob
	free      []*hookJob

	// onIdle, when set, is called when a live source has no packet to
	// read (Record hands over the exchanges it holds).
	onIdle func()

	// tlsWait holds the TLS connections whose records wait for their
	// secrets (WithKeyLogWait), open or already closed.
	tlsWait map[*stream]struct{}

	mu      sync.Mutex
	c       session.Counters
	tlsErrs []error
	conns   []session.ConnInfo // ended, not yet taken (TakeConns)
	// With hook workers: connections taken so far, and how many had
	// ended when the exchange Next returned last was ready (connsDue).
	connsTaken, connsShown int
}

var _ session.Source = (*Pipeline)(nil)

// zeroCopySource is met by pcap readers that reuse their packet buffer.
type zeroCopySource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// FromPackets returns a pipeline reading packets from src until it ends or
// ctx is done. The pipeline asks src.LinkType after every packet, so a
// source reading several files may change link type between files.
//
// Packet time drives every timeout (idle connections, gaps, the reorder
// window), so a pcap file is read the same however fast it is read. A live
// source that reports timeouts lets wall time stand in while no packet
// arrives.
//
// When ctx is done or src ends, Next flushes every connection (exchanges in
// progress are emitted, flagged incomplete), returns what remains, then
// io.EOF; a source error other than io.EOF is returned after the last
// exchange instead of io.EOF.
func FromPackets(ctx context.Context, src PacketSource, opts ...Option) (*Pipeline, error) {
	if src == nil {
		return nil, errors.New("capture: nil packet source")
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	p := &Pipeline{
		ctx: ctx,
		src: src,
		o:   o,
		dec: newDecoder(),
		dd:  newDeduper(o.dedupe),
		ord: newOrderer(int64(o.reorder), o.maxHeld),
	}
	if o.keys == nil {
		p.o.keyWait = 0
	}
	p.zc, _ = src.(zeroCopySource)
	pool := reassembly.NewStreamPool(&factory{p: p})
	p.asm = reassembly.NewAssembler(pool)
	p.asm.MaxBufferedPagesPerConnection = o.pagesPerConn
	p.asm.MaxBufferedPagesTotal = o.pagesTotal
	p.c.Unsupported = map[string]uint64{}
	p.c.TLS = map[string]uint64{}
	return p, nil
}

// Next returns the next exchange, io.EOF after the last.
func (p *Pipeline) Next() (*session.Exchange, error) {
	if p.o.hookWorkers > 1 && len(p.o.hooks) > 0 {
		return p.nextParallel()
	}
	for {
		if x := p.ord.pop(); x != nil {
			for _, f := range p.o.hooks {
				f(x)
			}
			return x, nil
		}
		if p.done {
			if p.err != nil {
				err := p.err
				p.err = nil
				return nil, err
			}
			return nil, io.EOF
		}
		p.step()
	}
}

// nextParallel is Next with the exchange funcs on the pipeline's hook
// workers (WithHookWorkers), long-lived goroutines each taking a batch of
// ready exchanges at a time: while they run the funcs, the caller reads
// packets for the next batch, and batches come back in the order they
// were made. A batch ends at hookBatch exchanges (or hookBytes of bodies),
// hookWait after it began, when the input ends, or when a live source has
// no packet, so an exchange waits little in a quiet capture. The workers
// end with the input, or when an abandoned pipeline is collected.
func (p *Pipeline) nextParallel() (*session.Exchange, error) {
	for {
		if p.aheadHead < len(p.ahead) {
			x := p.ahead[p.aheadHead]
			p.ahead[p.aheadHead] = nil
			p.connsShown = p.aheadAt[p.aheadHead]
			p.aheadHead++
			return x, nil
		}
		if len(p.inflight) > 0 && p.takeBatch(p.done || len(p.inflight) >= p.o.hookWorkers) {
			continue
		}
		if p.done && len(p.inflight) == 0 && !p.ord.ready() {
			p.connsShown = -1
			if p.pool != nil {
				p.pool.stop()
			}
			if p.err != nil {
				err := p.err
				p.err = nil
				return nil, err
			}
			return nil, io.EOF
		}
		if !p.gatherBatch() && len(p.inflight) > 0 {
			p.takeBatch(true) // nothing new came: hand over what ran
		}
	}
}

// Counters returns what the pipeline has seen so far, with the source's
// kernel drops when it counts them.
//
// Connections counts connections that carried at least one byte (a lone
// SYN or the last ACK of a closed connection is not one). Unsupported
// counts, per connection, traffic that was not recorded: "tls", "http2",
// "websocket", "upgrade", "connect", and "other" (a connection seen from
// its SYN that never spoke HTTP/1); and, per response, "unmatched-response"
// for a response whose request was not seen (sent before the capture
// began, or lost).
//
// A TLS connection that was not decrypted counts as "tls", and, once its
// ServerHello was seen, as "tls no keys sni=NAME" when the key log lacks
// its secrets or "tls REASON" when it could not be read (an unsupported
// suite, a wrong key, damage). A connection whose client sent 0-RTT data,
// which is not decrypted, also counts as "tls 0-rtt data skipped"; one
// decrypted speaking HTTP/2 is recorded as protocol h2. TLS counts decrypted
// connections by their parameters, "TLS 1.3 SUITE sni=NAME alpn=PROTO":
// an exchange has no place for its connection's TLS parameters without a
// format change, so the metadata keeps them per kind of connection. Keys
// are never recorded.
func (p *Pipeline) Counters() session.Counters {
	p.mu.Lock()
	c := p.c
	c.Unsupported = make(map[string]uint64, len(p.c.Unsupported))
	for k, v := range p.c.Unsupported {
		c.Unsupported[k] = v
	}
	c.TLS = maps.Clone(p.c.TLS)
	p.mu.Unlock()
	if len(c.Unsupported) == 0 {
		c.Unsupported = nil
	}
	if len(c.TLS) == 0 {
		c.TLS = nil
	}
	c.PacketsSeen = p.packets.Load()
	c.PacketsDuplicate = p.dups.Load()
	c.PacketsMalformed = p.malformed.Load()
	if dc, ok := p.src.(DropCounter); ok {
		if _, dropped, err := dc.Drops(); err == nil {
			c.PacketsDropped = dropped
		}
	}
	return c
}

// step reads packets until an exchange is ready or the input ends.
func (p *Pipeline) step() {
	for n := 0; !p.ord.ready(); n++ {
		if n&63 == 0 && p.ctx.Err() != nil {
			p.finish(nil)
			return
		}
		var data []byte
		var ci gopacket.CaptureInfo
		var err error
		if p.zc != nil {
			data, ci, err = p.zc.ZeroCopyReadPacketData()
		} else {
			data, ci, err = p.src.ReadPacketData()
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.finish(nil)
				return
			}
			if isTimeout(err) {
				// A live source with no traffic: let wall time stand in
				// for packet time so idle connections still flush.
				p.tick(time.Now().UnixNano())
				if p.onIdle != nil {
					p.onIdle()
				}
				if n > 0 {
					return
				}
				continue
			}
			if p.ctx.Err() != nil {
				p.finish(nil)
				return
			}
			p.finish(fmt.Errorf("capture: reading packets: %w", err))
			return
		}
		if err := p.packet(data, ci); err != nil {
			p.finish(err)
			return
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return true
	}
	var tmp interface{ Temporary() bool }
	return errors.As(err, &tmp) && tmp.Temporary()
}

// packet handles one captured packet.
func (p *Pipeline) packet(data []byte, ci gopacket.CaptureInfo) error {
	p.packets.Add(1)
	kind, err := p.dec.decode(p.src.LinkType(), data, &p.pkt)
	if err != nil {
		return err
	}
	switch kind {
	case pktMalformed:
		p.malformed.Add(1)
		return nil
	case pktOther:
		return nil
	}
	tcp := &p.dec.tcp
	if len(p.o.ports) > 0 && !slices.Contains(p.o.ports, uint16(tcp.SrcPort)) && !slices.Contains(p.o.ports, uint16(tcp.DstPort)) {
		return nil
	}
	if len(p.o.hosts) > 0 && !p.hostMatch() {
		return nil
	}
	if p.dd != nil && p.dd.duplicate(p.pkt.ip) {
		p.dups.Add(1)
		return nil
	}
	ts := ci.Timestamp.UnixNano()
	p.actx.ci = ci
	p.asm.AssembleWithContext(p.pkt.netFlow, tcp, &p.actx)
	p.tick(ts)
	return nil
}

func (p *Pipeline) hostMatch() bool {
	src, _ := netip.AddrFromSlice(p.pkt.src)
	dst, _ := netip.AddrFromSlice(p.pkt.dst)
	src, dst = src.Unmap(), dst.Unmap()
	for _, h := range p.o.hosts {
		if h == src || h == dst {
			return true
		}
	}
	return false
}

// tick advances the packet clock: once a flush interval, gaps older than the
// gap timeout are given up and idle connections closed; then finished
// exchanges are released in order.
func (p *Pipeline) tick(ts int64) {
	if ts > p.clock {
		p.clock = ts
	}
	if p.lastFlush == 0 {
		p.lastFlush = p.clock
	}
	if p.clock-p.lastFlush >= int64(p.o.flushInterval) {
		p.retryTLS(false)
		now := time.Unix(0, p.clock)
		p.asm.FlushWithOptions(reassembly.FlushOptions{T: now.Add(-p.o.gap), TC: now.Add(-p.o.idle)})
		p.lastFlush = p.clock
	}
	p.ord.advance(p.clock)
}

// finish flushes every connection and ends the input.
func (p *Pipeline) finish(err error) {
	if p.done {
		return
	}
	p.asm.FlushAll()
	p.retryTLS(true)
	p.ord.drain()
	p.done = true
	p.err = err
}

// asmContext carries a packet's capture info into the assembler without an
// allocation per packet.
type asmContext struct{ ci gopacket.CaptureInfo }

func (a *asmContext) GetCaptureInfo() gopacket.CaptureInfo { return a.ci }

// events receives what the HTTP parsers find.
type events Pipeline

var _ httpstream.Events = (*events)(nil)

func (e *events) RequestStarted(x *session.Exchange) { e.ord.started(x) }

func (e *events) Exchange(x *session.Exchange) {
	e.mu.Lock()
	e.c.Exchanges++
	if x.Flags.Incomplete() {
		e.c.Incomplete++
	}
	e.mu.Unlock()
	e.ord.finished(x, true)
}

func (e *events) Dropped(x *session.Exchange) { e.ord.finished(x, false) }

func (e *events) Unsupported(kind string) {
	e.mu.Lock()
	e.c.Unsupported[kind]++
	e.mu.Unlock()
}

func (e *events) Orphan() {
	e.mu.Lock()
	e.c.Unsupported["unmatched-response"]++
	e.mu.Unlock()
}

// factory creates a stream per TCP connection for the assembler.
type factory struct{ p *Pipeline }

func (f *factory) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, ac reassembly.AssemblerContext) reassembly.Stream {
	p := f.p
	cfg := httpstream.Config{
		Addr:       [2]netip.AddrPort{addrPort(netFlow.Src(), tcp.SrcPort), addrPort(netFlow.Dst(), tcp.DstPort)},
		Client:     httpstream.Unknown,
		MaxBody:    p.o.maxBody,
		MaxPending: p.o.maxPending,
	}
	switch {
	case tcp.SYN && !tcp.ACK:
		cfg.Client, cfg.StartSeen = httpstream.Side0, true
	case tcp.SYN && tcp.ACK:
		cfg.Client, cfg.StartSeen = httpstream.Side1, true
	case len(p.o.ports) > 0:
		// Without the SYN, a port named by the user marks the server; when
		// both or neither side uses one, the first request line decides.
		toSrv := slices.Contains(p.o.ports, uint16(tcp.DstPort))
		fromSrv := slices.Contains(p.o.ports, uint16(tcp.SrcPort))
		if toSrv && !fromSrv {
			cfg.Client = httpstream.Side0
		} else if fromSrv && !toSrv {
			cfg.Client = httpstream.Side1
		}
	}
	return &stream{p: p, cfg: cfg}
}

func addrPort(e gopacket.Endpoint, port layers.TCPPort) netip.AddrPort {
	a, _ := netip.AddrFromSlice(e.Raw())
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

// stream adapts one connection's reassembled data to its HTTP parser.
// The parser is made, and the connection counted and numbered, when the
// first byte arrives: the last ACK of a closed connection, or a stray
// packet, opens a stream in the assembler but is no connection to count.
//
// A connection whose first bytes are a TLS record goes through a
// tlsdecrypt.Conn first: its plaintext reaches the HTTP parser as if it had
// been sent in clear.
type stream struct {
	p   *Pipeline
	cfg httpstream.Config
	c   *httpstream.Conn
	rst [2]bool
	// tls is the connection's TLS reader when it speaks TLS; tlsOff is set
	// once it is accounted for (decrypted, or why not).
	tls    *tlsdecrypt.Conn
	tlsOff bool
	// ended: the TCP connection closed while its TLS records waited
	// for secrets, at endedAt (packet time).
	ended   bool
	endedAt int64
	// endAt holds, per side, the time+1 of a FIN that came while the
	// side's TLS records waited for secrets; 0 when none.
	endAt [2]int64
	first bool // the first byte has been seen
	life  tcpLife
}

func (s *stream) conn() *httpstream.Conn {
	if s.c == nil {
		p := s.p
		p.nextID++
		p.mu.Lock()
		p.c.Connections++
		p.mu.Unlock()
		s.cfg.ID = p.nextID
		s.c = httpstream.New(s.cfg, (*events)(p))
	}
	return s.c
}

func (s *stream) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, ac reassembly.AssemblerContext) bool {
	// Connections already open when the capture began have no SYN: start
	// them at their first segment instead of waiting for one.
	*start = true
	s.life.packet(tcp, side(dir), ci.Timestamp.UnixNano())
	if tcp.RST {
		s.rst[side(dir)] = true
	}
	return true
}

func side(dir reassembly.TCPFlowDirection) httpstream.Side {
	if dir == reassembly.TCPDirClientToServer {
		return httpstream.Side0
	}
	return httpstream.Side1
}

func (s *stream) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	dir, _, end, skip := sg.Info()
	sd := side(dir)
	n, _ := sg.Lengths()
	if s.c == nil {
		if n == 0 {
			return
		}
		// A connection opening with a TLS record is parsed from its
		// plaintext, and HTTP/2 in it is h2: the parser must know before
		// it is made.
		s.cfg.TLS = s.p.tlsStart(sg.Fetch(min(n, 3)))
	}
	s.conn()
	if skip > 0 {
		if s.tls != nil {
			s.tls.Gap(int(sd), skip)
			s.tlsCheck()
		}
		s.c.Gap(sd, skip, sg.CaptureInfo(0).Timestamp.UnixNano())
	}
	if n > 0 {
		data := sg.Fetch(n)
		if !s.first {
			s.first = true
			if s.p.tlsStart(data) {
				s.tls = tlsdecrypt.New(tlsdecrypt.Config{Keys: s.p.o.keys, Name: s.name(), MaxWait: s.p.o.keyWait, Room: s.room}, s.plaintext)
			}
		}
		if sg.Stats().Chunks <= 1 {
			s.feed(sd, data, sg.CaptureInfo(0).Timestamp.UnixNano())
		} else {
			s.feedSplit(sd, sg, data)
		}
	}
	if end {
		var ts int64
		if n > 0 {
			ts = sg.CaptureInfo(n - 1).Timestamp.UnixNano()
		}
		if s.tls != nil && s.tls.Waiting() && s.p.o.keyWait > 0 {
			// The plaintext before this end is still to come.
			s.endAt[sd] = ts + 1 // never 0
			return
		}
		s.end(sd, ts)
	}
}

// end ends side sd's HTTP direction at ts.
func (s *stream) end(sd httpstream.Side, ts int64) {
	s.c.End(sd, ts, true)
	if s.rst[sd] {
		// A reset ends both directions at once.
		s.c.Close()
	}
}

// feedSplit feeds data gathered from several segments piece by piece, so
// each byte carries the timestamp of the packet it came in.
func (s *stream) feedSplit(sd httpstream.Side, sg reassembly.ScatterGather, data []byte) {
	off := 0
	for off < len(data) {
		ts := sg.CaptureInfo(off).Timestamp
		// Find the end of the run with this timestamp by doubling, then
		// bisecting.
		lo, step := off, 1
		for lo+step < len(data) && sg.CaptureInfo(lo+step).Timestamp.Equal(ts) {
			lo += step
			step *= 2
		}
		hi := min(lo+step, len(data))
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if sg.CaptureInfo(mid).Timestamp.Equal(ts) {
				lo = mid
			} else {
				hi = mid
			}
		}
		s.feed(sd, data[off:hi], ts.UnixNano())
		off = hi
	}
}

// feed passes bytes to the connection's TLS reader, or, in clear, to its
// HTTP parser.
func (s *stream) feed(sd httpstream.Side, data []byte, ts int64) {
	if s.tls == nil {
		s.c.Feed(sd, data, ts)
		return
	}
	s.tls.Feed(int(sd), data, ts)
	s.tlsCheck()
	if s.tls.Waiting() && s.p.o.keyWait > 0 {
		s.p.waitTLS(s)
	}
}

func (s *stream) ReassemblyComplete(ac reassembly.AssemblerContext) bool {
	if s.tls != nil && s.tls.Waiting() && s.p.o.keyWait > 0 {
		// Its secrets may reach the key log after its last packet.
		s.ended, s.endedAt = true, s.p.clock
		s.p.waitTLS(s)
		return true
	}
	s.close()
	return true
}

// close ends the connection's TLS reader, if any, and its HTTP parser.
func (s *stream) close() {
	if s.tls != nil {
		s.tls.Close()
		s.tlsAccount()
		s.endsDue()
	}
	if s.c != nil {
		s.c.Close()
		s.p.endConn(s)
	}
}
