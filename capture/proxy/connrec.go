package proxy

import (
	"errors"
	"syscall"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// connLife is what the proxy sees of a client connection's life: when it
// was accepted, which side closed first (the client's end of its socket
// or the upstream's) and when, and the exchanges it carried.
type connLife struct {
	opened   int64
	closedAt int64
	closedBy session.Party
	reset    bool
	emitted  int
}

// ended notes that party's side of the connection ended with err, unless
// the other ended first. Only an end of stream or a reset counts: a read
// that failed because the proxy closed the socket (a shutdown, a grace
// running out) says nothing about who closed.
func (c *conn) ended(by session.Party, err error) {
	reset := errors.Is(err, syscall.ECONNRESET)
	if !isEOF(err) && !reset {
		return
	}
	now := time.Now().UnixNano()
	c.lifeMu.Lock()
	if c.life.closedBy == session.PartyNone {
		c.life.closedAt, c.life.closedBy, c.life.reset = now, by, reset
	}
	c.lifeMu.Unlock()
}

// emit counts x on its connection and queues it for Next.
func (c *conn) emit(x *session.Exchange) {
	c.lifeMu.Lock()
	c.life.emitted++
	c.lifeMu.Unlock()
	c.p.emit(x)
}

// record hands over the connection's record once it is done with.
func (c *conn) record() {
	c.lifeMu.Lock()
	l := c.life
	c.lifeMu.Unlock()
	ci := session.ConnInfo{ID: c.id, Client: addrPort(c.client.RemoteAddr()), Opened: l.opened,
		Closed: l.closedAt, ClosedBy: l.closedBy, Reset: l.reset, Exchanges: l.emitted}
	if up := c.upConn(); up != nil {
		ci.Server = addrPort(up.RemoteAddr())
	}
	if ci.ClosedBy == session.PartyNone {
		ci.Closed = time.Now().UnixNano() // the proxy ended it (shutdown) or it never spoke
	}
	c.p.mu.Lock()
	c.p.connRecs = append(c.p.connRecs, ci)
	c.p.mu.Unlock()
}

// TakeConns returns the records of the connections that ended since the
// last call (capture.ConnSource), for Record to write.
func (p *Proxy) TakeConns() []session.ConnInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.connRecs
	p.connRecs = nil
	return out
}
