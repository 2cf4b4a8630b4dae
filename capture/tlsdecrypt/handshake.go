package tlsdecrypt

import (
	"bytes"
	"crypto/tls"
	"fmt"
)

// Handshake message types (RFC 8446 §4).
const (
	hsClientHello         = 1
	hsServerHello         = 2
	hsNewSessionTicket    = 4
	hsEndOfEarlyData      = 5
	hsEncryptedExtensions = 8
	hsFinished            = 20
	hsKeyUpdate           = 24
)

// maxHandshake bounds one handshake message; certificate chains are the
// largest.
const maxHandshake = 1 << 18

// handshake reads the handshake messages in data, which may end inside a
// message or continue one that an earlier record began.
func (c *Conn) handshake(side int, data []byte, ts int64) outcome {
	d := &c.d[side]
	if len(d.hs) > 0 {
		d.hs = append(d.hs, data...)
		data = d.hs
	}
	for len(data) >= 4 {
		n := int(data[1])<<16 | int(data[2])<<8 | int(data[3])
		if n > maxHandshake {
			c.stop(side, d.off, fmt.Errorf("%w: handshake message of %d bytes", ErrCorrupt, n))
			return stop
		}
		if len(data) < 4+n {
			break
		}
		if o := c.message(side, data[0], data[4:4+n]); o != done {
			return o
		}
		data = data[4+n:]
	}
	d.hs = append(d.hs[:0], data...)
	return done
}

// message handles one whole handshake message.
func (c *Conn) message(side int, typ byte, m []byte) outcome {
	d := &c.d[side]
	switch typ {
	case hsClientHello:
		if c.client >= 0 && c.client != side {
			break
		}
		h, ok := parseClientHello(m)
		if !ok {
			c.stop(side, d.off, fmt.Errorf("%w: malformed ClientHello", ErrCorrupt))
			return stop
		}
		if c.client < 0 {
			// The ClientHello after a HelloRetryRequest keeps the random.
			c.client, c.crand, c.info.SNI, c.early = side, h.random, h.sni, h.earlyData
			c.cSID, c.cTicket = bytes.Clone(h.sessionID), bytes.Clone(h.ticket)
			c.offers13 = h.offers13
		}
	case hsServerHello:
		if side == c.client || c.client < 0 {
			c.stop(side, d.off, fmt.Errorf("%w: ServerHello without a ClientHello", ErrCorrupt))
			return stop
		}
		h, ok := parseServerHello(m)
		if !ok {
			c.stop(side, d.off, fmt.Errorf("%w: malformed ServerHello", ErrCorrupt))
			return stop
		}
		if h.random == helloRetryRandom {
			c.hrr = true
			return done
		}
		c.sSID = bytes.Clone(h.sessionID)
		return c.serverHello(side, h)
	case hsNewSessionTicket:
		if c.info.Version == tls.VersionTLS12 && side != c.client {
			r := newReader(m)
			r.bytes(4) // ticket_lifetime_hint
			if t := r.vec(2); t.ok && len(t.b) > 0 {
				c.newTicket = bytes.Clone(t.b)
				c.learn()
			}
		}
	case hsEncryptedExtensions:
		alpn, early, ok := parseEncryptedExtensions(m)
		if ok {
			c.info.ALPN = alpn
		}
		if c.early && side != c.client {
			c.earlyDecided(ok && early)
		}
	case hsFinished:
		if c.info.Version == tls.VersionTLS13 && d.phase == 1 {
			d.phase, d.aead, d.secret, d.seq = 2, nil, nil, 0
		}
	case hsKeyUpdate:
		if c.info.Version == tls.VersionTLS13 && d.phase == 2 && d.secret != nil {
			d.secret = c.suite.nextSecret13(d.secret)
			d.aead, d.seq = nil, 0
		}
	}
	return done
}

// serverHello learns the version and suite, and under TLS 1.3 turns both
// sides to their handshake keys.
func (c *Conn) serverHello(side int, h serverHello) outcome {
	c.srand, c.haveSH = h.random, true
	c.info.Version, c.info.Suite, c.info.ALPN = h.version, h.suite, h.alpn
	s, ok := suites[h.suite]
	if !ok || (h.version != tls.VersionTLS12 && h.version != tls.VersionTLS13) {
		c.stop(side, c.d[side].off, fmt.Errorf("%w: %s %s", ErrUnsupportedSuite, tls.VersionName(h.version), tls.CipherSuiteName(h.suite)))
		return stop
	}
	c.suite = s
	if h.version == tls.VersionTLS13 {
		for i := range c.d {
			c.d[i].phase, c.d[i].aead, c.d[i].secret, c.d[i].seq = 1, nil, nil, 0
		}
		// 0-RTT data comes first on the client's side, if the server
		// took it; after a HelloRetryRequest it did not.
		c.d[c.client].early = c.early && !c.hrr
	}
	return done
}
