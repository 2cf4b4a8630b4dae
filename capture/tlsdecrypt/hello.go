package tlsdecrypt

// reader reads big-endian fields from a handshake message; once a read
// runs past the end, ok is false and every later read returns zero.
type reader struct {
	b  []byte
	ok bool
}

func newReader(b []byte) *reader { return &reader{b: b, ok: true} }

func (r *reader) bytes(n int) []byte {
	if !r.ok || n < 0 || len(r.b) < n {
		r.ok = false
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return int(b[0])<<8 | int(b[1])
}

// vec returns a reader over a vector with an n-byte length prefix.
func (r *reader) vec(n int) *reader {
	var l int
	if n == 1 {
		l = r.u8()
	} else {
		l = r.u16()
	}
	b := r.bytes(l)
	return &reader{b: b, ok: r.ok}
}

// Extension numbers (RFC 8446 §4.2).
const (
	extServerName        = 0
	extALPN              = 16
	extSessionTicket     = 35
	extEarlyData         = 42
	extSupportedVersions = 43
)

// clientHello is what decryption needs of a ClientHello.
type clientHello struct {
	random    Random
	sessionID []byte
	ticket    []byte // a TLS 1.2 session ticket offered for resumption
	sni       string
	alpn      []string
	earlyData bool
	offers13  bool // supported_versions lists TLS 1.3
}

func parseClientHello(m []byte) (h clientHello, ok bool) {
	r := newReader(m)
	r.u16() // legacy_version
	copy(h.random[:], r.bytes(32))
	h.sessionID = r.vec(1).b
	r.vec(2) // cipher_suites
	r.vec(1) // legacy_compression_methods
	if !r.ok {
		return h, false
	}
	if len(r.b) == 0 {
		return h, true // no extensions (old clients)
	}
	exts := r.vec(2)
	for exts.ok && len(exts.b) > 0 {
		typ := exts.u16()
		e := exts.vec(2)
		switch typ {
		case extServerName:
			list := e.vec(2)
			for list.ok && len(list.b) > 0 {
				kind := list.u8()
				name := list.vec(2)
				if kind == 0 && name.ok && h.sni == "" {
					h.sni = string(name.b)
				}
			}
		case extALPN:
			list := e.vec(2)
			for list.ok && len(list.b) > 0 {
				p := list.vec(1)
				if p.ok {
					h.alpn = append(h.alpn, string(p.b))
				}
			}
		case extEarlyData:
			h.earlyData = true
		case extSupportedVersions:
			vs := e.vec(1)
			for vs.ok && len(vs.b) >= 2 {
				if vs.u16() == 0x0304 {
					h.offers13 = true
				}
			}
		case extSessionTicket:
			h.ticket = e.b
		}
	}
	return h, exts.ok && r.ok
}

// serverHello is what decryption needs of a ServerHello.
type serverHello struct {
	random    Random
	sessionID []byte
	version   uint16
	suite     uint16
	alpn      string
}

func parseServerHello(m []byte) (h serverHello, ok bool) {
	r := newReader(m)
	h.version = uint16(r.u16())
	copy(h.random[:], r.bytes(32))
	h.sessionID = r.vec(1).b
	h.suite = uint16(r.u16())
	r.u8() // legacy_compression_method
	if !r.ok {
		return h, false
	}
	if len(r.b) == 0 {
		return h, true
	}
	exts := r.vec(2)
	for exts.ok && len(exts.b) > 0 {
		typ := exts.u16()
		e := exts.vec(2)
		switch typ {
		case extSupportedVersions:
			if v := e.u16(); e.ok {
				h.version = uint16(v)
			}
		case extALPN:
			h.alpn = parseALPN(e)
		}
	}
	return h, exts.ok
}

// parseALPN reads the one protocol a server selected.
func parseALPN(e *reader) string {
	p := e.vec(2).vec(1)
	if !p.ok {
		return ""
	}
	return string(p.b)
}

// parseEncryptedExtensions returns the ALPN protocol a TLS 1.3 server
// selected, which it sends encrypted, and whether it accepted the
// client's 0-RTT data (the early_data extension).
func parseEncryptedExtensions(m []byte) (alpn string, early, ok bool) {
	exts := newReader(m).vec(2)
	for exts.ok && len(exts.b) > 0 {
		typ := exts.u16()
		e := exts.vec(2)
		switch typ {
		case extALPN:
			alpn = parseALPN(e)
		case extEarlyData:
			early = true
		}
	}
	return alpn, early, exts.ok
}

// helloRetryRandom is the ServerHello random that marks a
// HelloRetryRequest (RFC 8446 §4.1.3).
var helloRetryRandom = Random{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}
