package httpstream

import (
	"bytes"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
)

// KindUndecodableStream prefixes the kinds counted for HTTP/2 streams that
// could not be recorded: "http2-undecodable/" and one of session/http2's
// Reason constants (an HPACK table from before the capture, say).
const KindUndecodableStream = "http2-undecodable/"

// h2events passes what the HTTP/2 assembler finds to the Conn's Events.
type h2events struct{ c *Conn }

func (e h2events) Started(x *session.Exchange) {
	e.c.started = true
	e.c.ev.RequestStarted(x)
}
func (e h2events) Exchange(x *session.Exchange) {
	e.c.emitted++
	e.c.ev.Exchange(x)
}
func (e h2events) Dropped(x *session.Exchange) { e.c.ev.Dropped(x) }
func (e h2events) Undecodable(reason string)   { e.c.ev.Unsupported(KindUndecodableStream + reason) }

// isPreface reports whether data, a direction's first bytes, begin the
// HTTP/2 client preface (all of it, or as much as data holds).
func isPreface(data []byte) bool {
	n := min(len(data), len(http2.Preface))
	return n >= 4 && string(data[:n]) == http2.Preface[:n]
}

// switchH2 hands the connection to the HTTP/2 assembler: client is the
// client's side, start says the connection's HTTP/2 bytes are seen from
// their first (the preface or the upgrade), and upgrade is an h2c upgrade
// request that becomes stream 1. HTTP/1 exchanges already finished were
// emitted; any still queued are dropped.
func (c *Conn) switchH2(client Side, start bool, upgrade *session.Exchange) {
	guessed := c.client == Unknown && !start
	if c.client == Unknown {
		c.setClient(client)
		if c.client == Side1 {
			c.d[0], c.d[1] = c.d[1], c.d[0]
		}
	}
	c.emitReady()
	for _, t := range c.queue {
		if upgrade == nil || t.x != upgrade {
			c.ev.Dropped(t.x)
		}
	}
	c.queue, c.respNext = nil, 0
	c.info.Protocol = session.ProtoH2C
	if c.cfg.TLS {
		c.info.Protocol = session.ProtoH2
	}
	if upgrade != nil {
		upgrade.Conn.Protocol = c.info.Protocol
	}
	c.started = true
	c.h2 = http2.New(http2.Config{Conn: c.info, MaxBody: c.cfg.MaxBody, Start: start, Upgrade: upgrade, GuessedRoles: guessed}, h2events{c})
}

// h2dir is the assembler's direction for data sent by side s.
func (c *Conn) h2dir(s Side) int {
	if s == c.client {
		return http2.FromClient
	}
	return http2.FromServer
}

// h2Start looks at the first bytes of side s for HTTP/2 and switches to
// it: the preface from a client, or, on a connection joined mid-way,
// frames. It reports whether the connection is HTTP/2 now.
func (c *Conn) h2Start(s Side, data []byte) bool {
	switch {
	case isPreface(data) && (c.client == Unknown || c.client == s):
		c.switchH2(s, true, nil)
	case !c.cfg.StartSeen && !c.started && http2.LooksLikeFrames(data):
		client := c.client
		if client == Unknown {
			// Without a SYN or a port to say, the side on the higher
			// (ephemeral) port is taken for the client, a guess the
			// assembler checks against the first header block.
			client = Side0
			if c.cfg.Addr[1].Port() > c.cfg.Addr[0].Port() {
				client = Side1
			}
		}
		c.switchH2(client, false, nil)
	default:
		return false
	}
	return true
}

// upgradeH2 switches to HTTP/2 after a 101 answering an h2c upgrade
// request t: the request becomes stream 1 and the 101 its interim
// response.
func (c *Conn) upgradeH2(t *txn) {
	x := t.x
	resp := x.Response
	x.Response = session.Response{}
	x.Timing.ResponseStart = 0
	x.Stream = &session.Stream{ID: 1, Interim: []session.Interim{{Status: resp.Status, Header: resp.Header}}}
	// The upgrade request's body, if any, was read as HTTP/1 already.
	c.switchH2(c.client, true, x)
}

// preface bytes a request head "PRI * HTTP/2.0" stands for.
var prefaceHead = []byte("PRI * HTTP/2.0\r\n\r\n")

// h2FromHead switches to HTTP/2 when the request head parsed on direction
// 0 was the preface's first line, feeding it the bytes the head held.
func (c *Conn) h2FromHead(head []byte, ts int64) {
	c.switchH2(c.client, true, nil)
	if bytes.HasPrefix(head, prefaceHead) {
		c.h2.Feed(http2.FromClient, head, ts)
	}
}
