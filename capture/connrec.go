package capture

import (
	"github.com/gopacket/gopacket/layers"

	"github.com/reprise-tool/reprise/capture/httpstream"
	"github.com/reprise-tool/reprise/session"
)

// ConnSource is met by exchange sources that know their connections as
// wholes (the packet Pipeline, the recording proxy): Record writes what
// TakeConns returns as connection records (session.ConnInfo) to a sink
// that stores them (session.ConnWriter). TakeConns hands over the
// connections that ended since its last call; it must be safe to call
// from the goroutine that calls Next.
type ConnSource interface {
	TakeConns() []session.ConnInfo
}

// tcpLife is what a stream sees of its TCP connection's life, packet by
// packet: its first packet (the SYN when captured), its first FIN or RST
// and from which side, and its last packet.
type tcpLife struct {
	opened, last int64
	closedAt     int64
	closedBy     httpstream.Side // Unknown until a FIN or RST
	reset        bool
	recorded     bool // its ConnInfo was handed over
}

// packet notes one segment sent by side sd at ts.
func (l *tcpLife) packet(tcp *layers.TCP, sd httpstream.Side, ts int64) {
	if l.opened == 0 {
		l.opened, l.closedBy = ts, httpstream.Unknown
	}
	l.last = max(l.last, ts)
	if (tcp.FIN || tcp.RST) && l.closedAt == 0 {
		l.closedAt, l.closedBy, l.reset = ts, sd, tcp.RST
	}
}

// info makes the connection's record, once the parser c knows the roles.
func (l *tcpLife) info(c *httpstream.Conn) session.ConnInfo {
	sc := c.Conn()
	ci := session.ConnInfo{ID: sc.ID, Client: sc.Client, Server: sc.Server, Opened: l.opened, Exchanges: c.Exchanges()}
	switch {
	case l.closedAt != 0 && c.Client() != httpstream.Unknown:
		ci.Closed, ci.Reset = l.closedAt, l.reset
		ci.ClosedBy = session.PartyServer
		if l.closedBy == c.Client() {
			ci.ClosedBy = session.PartyClient
		}
	default:
		// Idle, open when the capture ended, or roles never known.
		ci.Closed = l.last
	}
	return ci
}

// endConn hands over the record of s's connection when it ends (once).
func (p *Pipeline) endConn(s *stream) {
	if s.c == nil || s.life.recorded || s.c.Conn().ID == 0 {
		return
	}
	s.life.recorded = true
	ci := s.life.info(s.c)
	p.mu.Lock()
	p.conns = append(p.conns, ci)
	p.mu.Unlock()
}

// TakeConns returns the connections that ended since the last call (see
// ConnSource).
func (p *Pipeline) TakeConns() []session.ConnInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.connsDue()
	out := p.conns[:n:n]
	p.conns = p.conns[n:]
	p.connsTaken += n
	return out
}
