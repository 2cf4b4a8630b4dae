// Package tlsdecrypt reads TLS connections from captured bytes with the
// session secrets that clients and servers log in the NSS key log format
// (SSLKEYLOGFILE), the way Wireshark does: it follows the handshake in
// clear to learn the client random, version, suite, SNI and ALPN, then
// decrypts both directions and hands the plaintext on.
//
// TLS 1.3 (handshake and application traffic secrets, KeyUpdate) and TLS
// 1.2 (master secret) are read with the AEAD suites real servers negotiate:
// AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305. Other suites, a wrong
// key, a truncated or corrupt record stop the connection with a
// *RecordError that names the connection, the direction and the offset;
// nothing panics. The secrets are used, never stored elsewhere.
package tlsdecrypt

import (
	"bytes"
	"crypto/cipher"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors a connection stops with, inside a *RecordError.
var (
	// ErrNoKeys: the key log has no secrets for the connection's client
	// random. The user should bring the key log of the client or server
	// that made it (Info.SNI says which host it was).
	ErrNoKeys = errors.New("no key log secrets for this connection")
	// ErrUnsupportedSuite: the connection uses a suite this package does
	// not decrypt (CBC suites, TLS 1.1 and older).
	ErrUnsupportedSuite = errors.New("unsupported cipher suite or version")
	// ErrNoHandshake: the capture started after the connection's
	// handshake, so its client random is unknown.
	ErrNoHandshake = errors.New("handshake not captured")
	// ErrCorrupt: a record header or handshake message makes no sense;
	// the bytes are not TLS or the capture is damaged.
	ErrCorrupt = errors.New("corrupt record")
	// ErrDecrypt: a record failed authentication, usually because the
	// logged secret is not this connection's (a wrong key log line).
	ErrDecrypt = errors.New("record failed authentication (wrong key or damaged record)")
	// ErrTruncated: the connection ended inside a record.
	ErrTruncated = errors.New("truncated record")
	// ErrGap: bytes of the connection were lost in the capture; TLS
	// cannot be read past them.
	ErrGap = errors.New("bytes lost in capture")
)

// RecordError says where a connection stopped being readable.
type RecordError struct {
	Conn   string // Config.Name
	Side   int    // the side that sent the record, as the caller numbers it
	Offset int64  // the record's first byte in that side's stream
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("tlsdecrypt: %s side %d offset %d: %v", e.Conn, e.Side, e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// State is where a connection is.
type State uint8

const (
	// Handshake: no application data yet.
	Handshake State = iota
	// Decrypting: application data has been decrypted.
	Decrypting
	// Stopped: the connection stopped with an error (Err says which).
	Stopped
)

// Info is what the handshake said about a connection. It holds no secret.
type Info struct {
	Version uint16 // tls.VersionTLS12, tls.VersionTLS13; 0 before the ServerHello
	Suite   uint16
	SNI     string
	ALPN    string // the protocol the server selected, "" when none
}

// String is "TLS 1.3 TLS_AES_128_GCM_SHA256 sni=example.com alpn=h2",
// without sni or alpn when the handshake had none.
func (i Info) String() string {
	s := "TLS"
	if i.Version != 0 {
		s = tls.VersionName(i.Version) + " " + tls.CipherSuiteName(i.Suite)
	}
	if i.SNI != "" {
		s += " sni=" + i.SNI
	}
	if i.ALPN != "" {
		s += " alpn=" + i.ALPN
	}
	return s
}

// Config configures one connection.
type Config struct {
	// Keys is where secrets are looked up; nil decrypts nothing (the
	// handshake is still followed, for Info).
	Keys *KeyLog
	// Name names the connection in errors ("conn 3 10.0.0.1:5000").
	Name string
	// MaxWait bounds the ciphertext bytes held while the connection's
	// secrets are not in the key log yet (live capture: the log is written
	// a little after the handshake). Zero gives up at the first miss.
	MaxWait int
	// Room, when set, offers the caller's own buffer for side's next
	// plaintext: the spare capacity of the body its parser is filling,
	// as long as the bytes the body still expects. A record whose
	// plaintext fits is decrypted straight into it, and the data handed
	// to the handler then lies there, so the parser keeps it without a
	// copy. Nil, or too short: the connection's own buffer is used.
	Room func(side int) []byte
}

// Stats count what a connection decrypted.
type Stats struct {
	Records   uint64 // records decrypted
	Plaintext uint64 // application data bytes handed on
	// Early counts the 0-RTT (early data) plaintext bytes handed on: data
	// a TLS 1.3 client sent with its ClientHello on a resumed session,
	// under CLIENT_EARLY_TRAFFIC_SECRET, which the server accepted.
	Early uint64
	// EarlyRejected counts the 0-RTT records the server did not accept
	// (the client sent no EndOfEarlyData): the server never read them, so
	// neither is their plaintext handed on.
	EarlyRejected uint64
	// EarlySkipped counts the 0-RTT records that could not be read: the
	// key log has no CLIENT_EARLY_TRAFFIC_SECRET for the connection (Go's
	// crypto/tls never sends 0-RTT; OpenSSL and NSS log the secret).
	EarlySkipped uint64
}

// maxRecord is the largest ciphertext a record may carry (RFC 5246 §6.2.3).
const maxRecord = 1<<14 + 2048

// Conn follows one TLS connection. Feed it each side's bytes in order; it
// calls the handler with each side's decrypted application data. A Conn is
// not safe for concurrent use. The data passed to the handler is valid only
// during the call.
type Conn struct {
	cfg    Config
	out    func(side int, data []byte, ts int64)
	d      [2]dir
	client int // the side that sent the ClientHello, -1 before
	info   Info
	crand  Random
	srand  Random
	// TLS 1.2 resumption: the ticket and session ID the client offered,
	// the ID the server chose, and a ticket the server issued.
	cTicket, cSID, sSID, newTicket []byte
	haveSH                         bool
	suite                          suite
	sec                            secrets
	keyed                          bool // sec holds this connection's secrets
	early                          bool // the client offered 0-RTT data
	hrr                            bool // the server asked for a new ClientHello
	// held is the 0-RTT plaintext read before the server's
	// EncryptedExtensions said whether it accepted it (earlyVerdict);
	// heldTS says where each record's piece ends and when it was captured.
	held         []byte
	heldTS       []tsMark
	earlyVerdict uint8
	// offers13: the client offered TLS 1.3, so it may send a
	// ChangeCipherSpec before the ServerHello.
	offers13 bool
	st       State
	err      error
	stats    Stats
	scratch  []byte
}

// dir is one side's record stream.
type dir struct {
	buf []byte // bytes of an incomplete record, or records held for keys
	// marks say when the bytes of buf were captured: a record takes the
	// time of the packet that completed it, even when it waited for keys.
	marks  []tsMark
	off    int64  // stream offset of buf[0]
	hs     []byte // an incomplete handshake message
	phase  uint8  // 0 clear; 1 encrypted (TLS 1.3: handshake keys); 2 TLS 1.3 application keys
	aead   cipher.AEAD
	iv     []byte
	secret []byte // TLS 1.3: the current traffic secret
	seq    uint64
	// waiting: a record waits for the connection's secrets.
	waiting bool
	// early: the client's records may still be 0-RTT data, under its early
	// traffic secret (TLS 1.3, phase 1, until EndOfEarlyData).
	early bool
	nonce [12]byte
	aad   [13]byte
}

// tsMark: the stream bytes before end were captured by ts.
type tsMark struct{ end, ts int64 }

// New returns a connection that calls out with each side's plaintext.
func New(cfg Config, out func(side int, data []byte, ts int64)) *Conn {
	return &Conn{cfg: cfg, out: out, client: -1}
}

// Info returns what the handshake said so far.
func (c *Conn) Info() Info { return c.info }

// State returns where the connection is.
func (c *Conn) State() State { return c.st }

// Err returns why the connection stopped, a *RecordError, or nil.
func (c *Conn) Err() error { return c.err }

// Stats returns what the connection decrypted.
func (c *Conn) Stats() Stats { return c.stats }

// Waiting reports whether records are held until the key log has the
// connection's secrets.
func (c *Conn) Waiting() bool { return c.st != Stopped && (c.d[0].waiting || c.d[1].waiting) }

// Feed passes bytes sent by side (0 or 1), captured at ts.
func (c *Conn) Feed(side int, data []byte, ts int64) {
	if c.st == Stopped || side < 0 || side > 1 || len(data) == 0 {
		return
	}
	d := &c.d[side]
	if len(d.buf) == 0 {
		n := c.records(side, data, ts)
		if c.st != Stopped && n < len(data) {
			d.buf = append(d.buf, data[n:]...)
			d.marks = append(d.marks, tsMark{d.off + int64(len(d.buf)), ts})
		}
	} else {
		d.buf = append(d.buf, data...)
		d.marks = append(d.marks, tsMark{d.off + int64(len(d.buf)), ts})
		c.drain(side, ts)
	}
	// A record of the other side may have waited for this one (the
	// client's Finished for the ServerHello).
	if c.st != Stopped && len(c.d[1-side].buf) > 0 {
		c.drain(1-side, ts)
	}
	if c.Waiting() && len(c.d[0].buf)+len(c.d[1].buf) > c.cfg.MaxWait {
		c.stop(side, c.d[side].off, ErrNoKeys)
	}
}

// Retry decrypts records held for secrets that the key log now has.
func (c *Conn) Retry(ts int64) {
	for side := range 2 {
		if c.st != Stopped && len(c.d[side].buf) > 0 {
			c.drain(side, ts)
		}
	}
}

// Gap says n bytes of side's stream were lost: the connection cannot be
// read past them.
func (c *Conn) Gap(side int, n int) {
	if c.st == Stopped || side < 0 || side > 1 {
		return
	}
	c.stop(side, c.d[side].off+int64(len(c.d[side].buf)), ErrGap)
}

// Close ends the connection: records still held for secrets give
// ErrNoKeys, and a record cut short gives ErrTruncated.
func (c *Conn) Close() {
	if c.st == Stopped {
		return
	}
	c.Retry(0)
	if c.st == Stopped {
		return
	}
	if c.Waiting() {
		c.stop(0, c.d[0].off, ErrNoKeys)
		return
	}
	for side := range 2 {
		if len(c.d[side].buf) > 0 {
			c.stop(side, c.d[side].off, ErrTruncated)
			return
		}
	}
}

func (c *Conn) drain(side int, ts int64) {
	d := &c.d[side]
	n := c.records(side, d.buf, ts)
	if c.st == Stopped {
		return
	}
	d.buf = d.buf[:copy(d.buf, d.buf[n:])]
}

func (c *Conn) stop(side int, off int64, err error) {
	if c.st == Stopped {
		return
	}
	c.st = Stopped
	c.err = &RecordError{Conn: c.cfg.Name, Side: side, Offset: off, Err: err}
	for i := range c.d {
		c.d[i].buf, c.d[i].hs, c.d[i].marks = nil, nil, nil
	}
}

// outcome of one record.
type outcome uint8

const (
	done outcome = iota // consumed
	wait                // keep it and the rest for later
	stop                // the connection stopped
)

// records reads whole records from b, and returns how many bytes it used.
func (c *Conn) records(side int, b []byte, ts int64) int {
	d := &c.d[side]
	off := 0
	d.waiting = false
	for len(b)-off >= 5 {
		typ, n := b[off], int(binary.BigEndian.Uint16(b[off+3:]))
		if typ < 20 || typ > 23 || b[off+1] != 3 || n > maxRecord {
			c.stop(side, d.off, fmt.Errorf("%w: type %d, version %d.%d, length %d", ErrCorrupt, typ, b[off+1], b[off+2], n))
			return len(b)
		}
		if len(b)-off < 5+n {
			break
		}
		rts := ts
		end := d.off + int64(5+n)
		for _, m := range d.marks {
			if m.end >= end {
				rts = m.ts
				break
			}
		}
		switch c.record(side, b[off:off+5], b[off+5:off+5+n], rts) {
		case wait:
			return off
		case stop:
			return len(b)
		}
		off += 5 + n
		d.off = end
		i := 0
		for i < len(d.marks) && d.marks[i].end <= d.off {
			i++
		}
		d.marks = d.marks[:copy(d.marks, d.marks[i:])]
	}
	return off
}

// Record content types.
const (
	recChangeCipherSpec = 20
	recAlert            = 21
	recHandshake        = 22
	recApplicationData  = 23
)

// record handles one whole record.
func (c *Conn) record(side int, hdr, body []byte, ts int64) outcome {
	if c.earlyFirst(side, ts) == stop {
		return stop
	}
	d := &c.d[side]
	typ := hdr[0]
	if typ == recChangeCipherSpec {
		if !c.haveSH {
			if c.offers13 || side != c.client {
				// TLS 1.3 sends one before the ServerHello (around a
				// HelloRetryRequest, or with early data) for middleboxes;
				// a TLS 1.2 server's follows its own ServerHello.
				return done
			}
			// A TLS 1.2 client's, whose ServerHello is still to be read.
			return wait
		}
		if c.info.Version == tls.VersionTLS12 {
			d.phase, d.aead, d.seq = 1, nil, 0
		}
		return done // TLS 1.3 sends one for middleboxes only
	}
	if d.phase == 0 {
		switch {
		case typ == recHandshake:
			return c.handshake(side, body, ts)
		case typ == recAlert:
			return done
		case c.client < 0:
			c.stop(side, d.off, ErrNoHandshake)
			return stop
		case !c.haveSH && c.hrr && side == c.client && typ == recApplicationData:
			// 0-RTT data before a HelloRetryRequest, which rejects it.
			c.stats.EarlyRejected++
			return done
		case !c.haveSH:
			return wait
		}
		c.stop(side, d.off, fmt.Errorf("%w: application data before the keys changed", ErrCorrupt))
		return stop
	}
	if d.early {
		if o, ok := c.earlyRecord(side, hdr, body, ts); ok {
			return o
		}
	}
	if d.aead == nil {
		if o := c.keys(side); o != done {
			return o
		}
	}
	// Held 0-RTT data reaches the parser first: its room is not yet
	// where the next bytes go.
	plain, inner, err := c.open(side, hdr, body, len(c.held) == 0)
	if err != nil {
		if side == c.client && d.phase == 1 && c.early && c.info.Version == tls.VersionTLS13 {
			// 0-RTT data under an early secret the key log lacks.
			c.stats.EarlySkipped++
			return done
		}
		c.stop(side, d.off, err)
		return stop
	}
	c.stats.Records++
	switch inner {
	case recHandshake:
		return c.handshake(side, plain, ts)
	case recApplicationData:
		if c.info.Version == tls.VersionTLS13 && d.phase != 2 {
			c.stop(side, d.off, fmt.Errorf("%w: application data under handshake keys", ErrCorrupt))
			return stop
		}
		c.st = Decrypting
		c.stats.Plaintext += uint64(len(plain))
		if c.out != nil && len(plain) > 0 {
			c.out(side, plain, ts)
		}
	}
	return done
}

// keys sets up side's record protection for its phase, from the key log.
func (c *Conn) keys(side int) outcome {
	d := &c.d[side]
	if !c.keyed {
		sec, ok := c.cfg.Keys.lookup(c.crand)
		if c.info.Version == tls.VersionTLS12 {
			if sec.master == nil {
				sec.master = c.resumedMaster()
			}
			ok = sec.master != nil
		} else if ok {
			ok = sec.clientHS != nil && sec.serverHS != nil && sec.clientApp != nil && sec.serverApp != nil
		}
		if !ok {
			d.waiting = true
			if c.cfg.MaxWait == 0 {
				c.stop(side, d.off, ErrNoKeys)
				return stop
			}
			return wait
		}
		c.sec, c.keyed = sec, true
		c.learn()
	}
	role := 0 // client
	if side != c.client {
		role = 1
	}
	var err error
	if c.info.Version == tls.VersionTLS12 {
		aeads, ivs, kerr := c.suite.keys12(c.sec.master, c.crand, c.srand)
		d.aead, d.iv, err = aeads[role], ivs[role], kerr
	} else {
		if d.secret == nil && d.early {
			d.secret = c.sec.clientEarly
		} else if d.secret == nil {
			d.secret = [2][2][]byte{{c.sec.clientHS, c.sec.serverHS}, {c.sec.clientApp, c.sec.serverApp}}[d.phase-1][role]
		}
		d.aead, d.iv, err = c.suite.trafficKeys13(d.secret)
	}
	if err != nil {
		// A secret of the wrong length for the suite: a wrong key log line.
		c.stop(side, d.off, fmt.Errorf("%w: %v", ErrDecrypt, err))
		return stop
	}
	return done
}

// open decrypts one record and returns its plaintext and content type.
// With room it may decrypt into Config.Room's buffer.
func (c *Conn) open(side int, hdr, body []byte, room bool) ([]byte, byte, error) {
	d := &c.d[side]
	ov := d.aead.Overhead()
	if c.info.Version == tls.VersionTLS13 {
		copy(d.nonce[:], d.iv)
		xorSeq(&d.nonce, d.seq)
		dst, own := c.dst(side, len(body)-ov, room)
		out, err := d.aead.Open(dst, d.nonce[:], body, hdr)
		if err != nil {
			return nil, 0, ErrDecrypt
		}
		if own {
			c.scratch = out[:0]
		}
		d.seq++
		i := len(out) - 1
		for i >= 0 && out[i] == 0 {
			i--
		}
		if i < 0 {
			return nil, 0, fmt.Errorf("%w: no content type", ErrCorrupt)
		}
		return out[:i], out[i], nil
	}
	ct := body
	if c.suite.aead == aesGCM {
		if len(body) < 8 {
			return nil, 0, ErrDecrypt
		}
		copy(d.nonce[:4], d.iv)
		copy(d.nonce[4:], body[:8])
		ct = body[8:]
	} else {
		copy(d.nonce[:], d.iv)
		xorSeq(&d.nonce, d.seq)
	}
	if len(ct) < ov {
		return nil, 0, ErrDecrypt
	}
	binary.BigEndian.PutUint64(d.aad[:8], d.seq)
	copy(d.aad[8:11], hdr[:3])
	binary.BigEndian.PutUint16(d.aad[11:], uint16(len(ct)-ov))
	dst, own := c.dst(side, len(ct)-ov, room)
	out, err := d.aead.Open(dst, d.nonce[:], ct, d.aad[:])
	if err != nil {
		return nil, 0, ErrDecrypt
	}
	if own {
		c.scratch = out[:0]
	}
	d.seq++
	return out, hdr[0], nil
}

// dst is where n bytes of side's plaintext are decrypted to: the room
// Config.Room offers when room is allowed and it holds them all, else the
// connection's scratch buffer (own).
func (c *Conn) dst(side, n int, room bool) (b []byte, own bool) {
	if room && c.cfg.Room != nil && n > 0 {
		if r := c.cfg.Room(side); len(r) >= n {
			return r[:0], false
		}
	}
	return c.scratch[:0], true
}

// resumedMaster finds the master secret of a resumed TLS 1.2 session by
// the ticket the client offered or the session ID the server echoed.
func (c *Conn) resumedMaster() []byte {
	if m := c.cfg.Keys.resumed("t:" + string(c.cTicket)); m != nil {
		return m
	}
	if bytes.Equal(c.cSID, c.sSID) {
		return c.cfg.Keys.resumed("s:" + string(c.sSID))
	}
	return nil
}

// learn remembers a TLS 1.2 connection's session for later resumptions.
func (c *Conn) learn() {
	if !c.keyed || c.info.Version != tls.VersionTLS12 {
		return
	}
	c.cfg.Keys.learnSession("s:"+string(c.sSID), c.sec.master)
	c.cfg.Keys.learnSession("t:"+string(c.newTicket), c.sec.master)
}

func xorSeq(n *[12]byte, seq uint64) {
	for i := range 8 {
		n[4+i] ^= byte(seq >> (56 - 8*i))
	}
}
