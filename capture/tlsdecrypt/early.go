package tlsdecrypt

import "fmt"

// maxEarly bounds the 0-RTT plaintext held until the server says whether
// it took it (servers accept 16 KiB by default).
const maxEarly = 1 << 20

// What the server said of the client's 0-RTT data (Conn.earlyVerdict).
const (
	earlyUnknown  uint8 = iota // its EncryptedExtensions not read yet
	earlyAccepted              // they carry the early_data extension
	earlyRejected              // they do not
)

// earlyRecord reads a TLS 1.3 client record while 0-RTT data may still be
// coming, under the client's early traffic secret: 0-RTT application data
// is handed on if the server accepted it (its EncryptedExtensions say so),
// held until they are read, dropped if it did not (the server never read
// it), and EndOfEarlyData ends it. A record the early secret does not open
// is the client's first under its handshake secret (a client sends no
// EndOfEarlyData to a server that rejected 0-RTT): ok is false for the
// record to be read as usual. Without the early secret in the key log the
// 0-RTT records are skipped (Stats.EarlySkipped).
func (c *Conn) earlyRecord(side int, hdr, body []byte, ts int64) (o outcome, ok bool) {
	d := &c.d[side]
	if d.aead == nil {
		if o := c.keys(side); o != done {
			return o, true
		}
		if len(c.sec.clientEarly) == 0 {
			c.endEarly(side)
			return done, false
		}
	}
	plain, inner, err := c.open(side, hdr, body, false)
	if err != nil {
		c.stats.EarlyRejected += uint64(len(c.heldTS))
		c.held, c.heldTS = c.held[:0], c.heldTS[:0]
		c.endEarly(side)
		return done, false
	}
	c.stats.Records++
	switch inner {
	case recApplicationData:
		switch c.earlyVerdict {
		case earlyAccepted:
			c.handOnEarly(side, plain, ts)
		case earlyRejected:
			c.stats.EarlyRejected++
		default:
			if len(c.held)+len(plain) > maxEarly {
				c.stop(side, d.off, fmt.Errorf("%w: over %d bytes of 0-RTT data", ErrCorrupt, maxEarly))
				return stop, true
			}
			c.held = append(c.held, plain...)
			c.heldTS = append(c.heldTS, tsMark{int64(len(c.held)), ts})
		}
	case recHandshake:
		if len(plain) != 4 || plain[0] != hsEndOfEarlyData {
			c.stop(side, d.off, fmt.Errorf("%w: a handshake record in 0-RTT data that is not EndOfEarlyData", ErrCorrupt))
			return stop, true
		}
		// Only a server that took the 0-RTT data is sent EndOfEarlyData.
		c.earlyDecided(true)
		c.endEarly(side)
	}
	return done, true
}

// earlyDecided takes the server's word on the client's 0-RTT data: what
// was held is handed on if it accepted it, else dropped.
func (c *Conn) earlyDecided(accepted bool) {
	if c.earlyVerdict != earlyUnknown {
		return
	}
	c.earlyVerdict = earlyRejected
	if accepted {
		c.earlyVerdict = earlyAccepted
	}
	start := int64(0)
	for _, m := range c.heldTS {
		if accepted {
			c.handOnEarly(c.client, c.held[start:m.end], m.ts)
		} else {
			c.stats.EarlyRejected++
		}
		start = m.end
	}
	c.held, c.heldTS = nil, nil
}

// handOnEarly hands on 0-RTT plaintext the server accepted.
func (c *Conn) handOnEarly(side int, p []byte, ts int64) {
	if len(p) == 0 {
		return
	}
	c.st = Decrypting
	c.stats.Plaintext += uint64(len(p))
	c.stats.Early += uint64(len(p))
	if c.out != nil {
		c.out(side, p, ts)
	}
}

// endEarly turns side from its early traffic secret to its handshake one.
func (c *Conn) endEarly(side int) {
	d := &c.d[side]
	d.early, d.aead, d.secret, d.seq = false, nil, nil, 0
}

// earlyFirst reads the client's 0-RTT records that wait in its buffer
// before a server record: the server answers 0-RTT requests with its first
// application data, which must not reach the parser before them.
func (c *Conn) earlyFirst(side int, ts int64) outcome {
	if c.client < 0 || side == c.client || !c.d[c.client].early || len(c.d[c.client].buf) == 0 {
		return done
	}
	c.drain(c.client, ts)
	if c.st == Stopped {
		return stop
	}
	return done
}
