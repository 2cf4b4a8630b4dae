package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
)

// The exchange record encoding (FORMAT.md, "Exchange record"). Numbers come
// first, then every string of the exchange in one blob, then the bodies, so
// a decoder makes one string allocation per exchange and copies bodies
// straight into the caller's slices. Fields are only ever appended; a
// decoder ignores bytes after the fields it knows.

// encodeExchange appends the encoding of ex to b, with bodies cut to
// bodyCap bytes (and the truncation flags and sizes set to match).
func encodeExchange(b []byte, ex *Exchange, bodyCap int) []byte {
	b, reqBody, respBody := encodeHead(b, ex, bodyCap)
	b = appendBodies(b, reqBody, respBody)
	if hasExt(ex) {
		b = appendExt(b, ex)
	}
	return b
}

// encodeHead appends the part of ex's encoding before the bodies (numbers,
// strings, token fields) and returns the bodies cut to bodyCap. The whole
// record is head, appendBodies, then the extension when hasExt: the
// Writer assembles it in its block buffer, so the bodies are copied once.
func encodeHead(b []byte, ex *Exchange, bodyCap int) (_, reqBody, respBody []byte) {
	flags := ex.Flags
	reqBody, reqSize := ex.Request.Body, ex.Request.BodySize
	if len(reqBody) > bodyCap {
		reqBody = reqBody[:bodyCap]
		flags |= FlagRequestTruncated
		reqSize = max(reqSize, int64(len(ex.Request.Body)))
	}
	respBody, respSize := ex.Response.Body, ex.Response.BodySize
	if len(respBody) > bodyCap {
		respBody = respBody[:bodyCap]
		flags |= FlagResponseTruncated
		respSize = max(respSize, int64(len(ex.Response.Body)))
	}

	b = binary.AppendUvarint(b, uint64(flags))
	b = binary.AppendUvarint(b, ex.Conn.ID)
	b = binary.AppendUvarint(b, uint64(ex.Index))
	b = appendAddrPort(b, ex.Conn.Client)
	b = appendAddrPort(b, ex.Conn.Server)
	t := ex.Timing
	b = binary.AppendVarint(b, t.RequestStart)
	b = binary.AppendVarint(b, t.RequestEnd-t.RequestStart)
	b = binary.AppendVarint(b, t.ResponseStart-t.RequestStart)
	b = binary.AppendVarint(b, t.ResponseEnd-t.RequestStart)
	b = binary.AppendVarint(b, reqSize)
	b = binary.AppendVarint(b, int64(ex.Response.Status))
	b = binary.AppendVarint(b, respSize)
	b = binary.AppendUvarint(b, uint64(len(ex.Request.Header)))
	b = binary.AppendUvarint(b, uint64(len(ex.Response.Header)))
	b = binary.AppendUvarint(b, uint64(len(ex.Warnings)))
	b = binary.AppendUvarint(b, uint64(len(ex.Tokens)))

	// String lengths, in the fixed order, then the blob.
	n := 0
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); n += len(s) }
	forEachString(ex, str)
	b = binary.AppendUvarint(b, uint64(n))
	forEachString(ex, func(s string) { b = append(b, s...) })

	for i := range ex.Tokens {
		tk := &ex.Tokens[i]
		b = binary.AppendVarint(b, tk.ExpiresAt)
		b = binary.AppendVarint(b, tk.Lead)
		p := byte(0)
		if tk.Proactive {
			p = 1
		}
		b = append(b, p)
	}
	return b, reqBody, respBody
}

// appendBodies appends the two bodies with their lengths.
func appendBodies(b, reqBody, respBody []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(reqBody)))
	b = append(b, reqBody...)
	b = binary.AppendUvarint(b, uint64(len(respBody)))
	return append(b, respBody...)
}

// bodiesLen is the length appendBodies adds.
func bodiesLen(reqBody, respBody []byte) int {
	return uvarintLen(uint64(len(reqBody))) + len(reqBody) + uvarintLen(uint64(len(respBody))) + len(respBody)
}

// uvarintLen is the length of binary.AppendUvarint's encoding of v.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// forEachString calls f with every string of ex in the encoding's order.
func forEachString(ex *Exchange, f func(string)) {
	f(ex.Request.Method)
	f(ex.Request.Target)
	f(ex.Request.Proto)
	for _, h := range ex.Request.Header {
		f(h.Name)
		f(h.Value)
	}
	f(ex.Response.Proto)
	f(ex.Response.Reason)
	for _, h := range ex.Response.Header {
		f(h.Name)
		f(h.Value)
	}
	f(ex.Session)
	for _, w := range ex.Warnings {
		f(w)
	}
	for _, t := range ex.Tokens {
		f(string(t.Kind))
		f(t.Name)
		f(t.Value)
		f(t.Prev)
	}
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return append(b, 0)
	}
	a := ap.Addr()
	z := a.Zone()
	if a.Is4() {
		b = append(b, 4)
		a4 := a.As4()
		b = append(b, a4[:]...)
	} else {
		b = binary.AppendUvarint(b, uint64(16+len(z)))
		a16 := a.As16()
		b = append(b, a16[:]...)
		b = append(b, z...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// errShort is wrapped into ErrBadRecord when a record ends early.
var errShort = errors.New("record ends early")

// decoder reads the fields of one record.
type decoder struct {
	b   []byte
	err error
}

// uvarint reads an unsigned varint. Most of a record's are lengths and
// counts below 128, one byte, which it reads without binary.Uvarint's
// loop (see also stringTable.next).
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	if b := d.b; len(b) > 0 && b[0] < 0x80 {
		d.b = b[1:]
		return uint64(b[0])
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items that each take at least min bytes, so a
// forged count cannot make the caller allocate more than the record holds.
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)/min) {
		d.err = fmt.Errorf("count %d larger than the record", v)
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) addrPort() netip.AddrPort {
	n := d.count(1)
	if n == 0 || d.err != nil {
		return netip.AddrPort{}
	}
	raw := d.bytes(n)
	portb := d.bytes(2)
	if d.err != nil {
		return netip.AddrPort{}
	}
	var a netip.Addr
	switch {
	case n == 4:
		a = netip.AddrFrom4([4]byte(raw))
	case n >= 16:
		a = netip.AddrFrom16([16]byte(raw[:16]))
		if n > 16 {
			a = a.WithZone(string(raw[16:]))
		}
	default:
		d.err = fmt.Errorf("address of %d bytes", n)
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, binary.BigEndian.Uint16(portb))
}

// stringTable hands out the strings of one record, sliced from one string.
// It holds its lengths' decoder by value: a pointer to one made it escape,
// an allocation for every record decoded.
type stringTable struct {
	lens decoder // reads the lengths
	blob string
}

func (t *stringTable) next() string {
	var n uint64
	if b := t.lens.b; len(b) > 0 && b[0] < 0x80 && t.lens.err == nil {
		// a length below 128: decoder.uvarint's first case, without the
		// call, once for each string of every record
		n, t.lens.b = uint64(b[0]), b[1:]
	} else if n = t.lens.uvarint(); t.lens.err != nil {
		return ""
	}
	if n > uint64(len(t.blob)) {
		t.lens.err = errShort
		return ""
	}
	s := t.blob[:n]
	t.blob = t.blob[n:]
	return s
}

// decodeExchange decodes an exchange record into ex, reusing ex's header,
// warning, token and body slices. On error ex holds partial data.
func decodeExchange(rec []byte, ex *Exchange) error { return decodeExchangeKeep(rec, ex, nil) }

// decodeExchangeKeep is decodeExchange that copies a non-empty recorded
// response body only when keep (nil: always) asks for it, once all the
// rest of ex is decoded: a body left out costs neither its copy nor the
// collector's time.
func decodeExchangeKeep(rec []byte, ex *Exchange, keep func(*Exchange) bool) error {
	d := decoder{b: rec}
	ex.Flags = Flags(d.uvarint())
	ex.Conn.ID = d.uvarint()
	ex.Index = int(d.uvarint())
	ex.Conn.Client = d.addrPort()
	ex.Conn.Server = d.addrPort()
	start := d.varint()
	ex.Timing = Timing{
		RequestStart:  start,
		RequestEnd:    start + d.varint(),
		ResponseStart: start + d.varint(),
		ResponseEnd:   start + d.varint(),
	}
	ex.Request.BodySize = d.varint()
	ex.Response.Status = int(d.varint())
	ex.Response.BodySize = d.varint()
	nReq := d.count(2)
	nResp := d.count(2)
	nWarn := d.count(1)
	nTok := d.count(4)
	if d.err != nil {
		return d.err
	}

	// The lengths come first and the blob after them: skip the lengths
	// once to find the blob, make it one string, then slice it.
	nStr := 3 + 2*nReq + 2 + 2*nResp + 1 + nWarn + 4*nTok
	lens := decoder{b: d.b}
	for range nStr {
		if b := lens.b; len(b) > 0 && b[0] < 0x80 {
			lens.b = b[1:] // one byte: see stringTable.next
			continue
		}
		lens.uvarint()
	}
	if lens.err != nil {
		return lens.err
	}
	lens.b = d.b[:len(d.b)-len(lens.b)]
	d.b = d.b[len(lens.b):]
	blob := d.bytes(d.count(1))
	if d.err != nil {
		return d.err
	}
	st := stringTable{lens: lens, blob: string(blob)}

	reqH, respH := ex.Request.Header[:0], ex.Response.Header[:0]
	if cap(reqH) < nReq && cap(respH) < nResp {
		// Both lists in one allocation, each capped at its length so
		// that appending to one never writes over the other.
		both := make(Headers, nReq+nResp)
		reqH, respH = both[:0:nReq], both[nReq:nReq:nReq+nResp]
	}
	ex.Request.Method = st.next()
	ex.Request.Target = st.next()
	ex.Request.Proto = st.next()
	ex.Request.Header = readHeaders(&st, reqH, nReq)
	ex.Response.Proto = st.next()
	ex.Response.Reason = st.next()
	ex.Response.Header = readHeaders(&st, respH, nResp)
	ex.Session = st.next()
	ex.Warnings = ex.Warnings[:0]
	for range nWarn {
		ex.Warnings = append(ex.Warnings, st.next())
	}
	ex.Tokens = ex.Tokens[:0]
	for range nTok {
		ex.Tokens = append(ex.Tokens, TokenEvent{
			Kind:  TokenEventKind(st.next()),
			Name:  st.next(),
			Value: st.next(),
			Prev:  st.next(),
		})
	}
	if st.lens.err != nil {
		return st.lens.err
	}
	if len(st.blob) != 0 {
		return fmt.Errorf("%d string bytes left over", len(st.blob))
	}
	for i := range ex.Tokens {
		tk := &ex.Tokens[i]
		tk.ExpiresAt = d.varint()
		tk.Lead = d.varint()
		p := d.bytes(1)
		tk.Proactive = len(p) == 1 && p[0] == 1
	}
	ex.Request.Body = appendBody(ex.Request.Body[:0], d.bytes(d.count(1)))
	respBody := d.bytes(d.count(1))
	ex.Response.Body = ex.Response.Body[:0]
	if d.err != nil {
		return d.err
	}
	if err := decodeExt(&d, ex); err != nil {
		return err
	}
	if len(respBody) > 0 && (keep == nil || keep(ex)) {
		ex.Response.Body = append(ex.Response.Body, respBody...)
	}
	return nil
}

func readHeaders(st *stringTable, h Headers, n int) Headers {
	if n == 0 {
		return h
	}
	if cap(h) < n {
		h = make(Headers, 0, n)
	}
	for range n {
		h = append(h, Header{Name: st.next(), Value: st.next()})
	}
	return h
}

// appendBody copies src into dst; an empty body stays nil (or dst's empty
// slice) rather than allocating.
func appendBody(dst, src []byte) []byte {
	if len(src) == 0 {
		return dst
	}
	return append(dst, src...)
}

// hasExt reports whether ex has any field of the 1.1 extension; an HTTP/1
// exchange without trailers has none and is encoded exactly as in 1.0.
func hasExt(ex *Exchange) bool {
	return ex.Conn.Protocol != ProtoHTTP1 || ex.Stream != nil ||
		len(ex.Request.Trailer) > 0 || len(ex.Response.Trailer) > 0
}

// appendExt appends the 1.1 extension (FORMAT.md, "Extension"): its length,
// then the protocol, trailers and stream fields.
func appendExt(b []byte, ex *Exchange) []byte {
	lenAt := len(b)
	b = append(b, 0, 0, 0, 0, 0) // room for the length, fixed below
	start := len(b)
	b = binary.AppendUvarint(b, uint64(ex.Conn.Protocol))
	b = appendHeaderList(b, ex.Request.Trailer)
	b = appendHeaderList(b, ex.Response.Trailer)
	s := ex.Stream
	if s == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(s.ID))
		b = binary.AppendUvarint(b, uint64(len(s.Interim)))
		for _, in := range s.Interim {
			b = binary.AppendVarint(b, int64(in.Status))
			b = appendHeaderList(b, in.Header)
		}
		b = append(b, byte(s.Reset.By))
		b = binary.AppendUvarint(b, uint64(s.Reset.Code))
		b = append(b, byte(s.GoAway.By))
		b = binary.AppendUvarint(b, uint64(s.GoAway.Code))
		b = binary.AppendUvarint(b, uint64(s.Pushes))
		b = appendGRPC(b, s.GRPC)
	}
	// The length is a 5-byte uvarint (padded with continuation bits), so
	// the extension is written in place without a second buffer.
	n := uint64(len(b) - start)
	for i := range 4 {
		b[lenAt+i] = byte(n) | 0x80
		n >>= 7
	}
	b[lenAt+4] = byte(n)
	return b
}

func appendGRPC(b []byte, g *GRPC) []byte {
	if g == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	st := byte(0)
	if g.HasStatus {
		st = 1
	}
	b = append(b, st)
	b = binary.AppendVarint(b, int64(g.Status))
	b = appendString(b, g.StatusMessage)
	b = binary.AppendUvarint(b, uint64(len(g.Messages)))
	var prev int64
	for _, m := range g.Messages {
		f := byte(0)
		if m.FromServer {
			f |= 1
		}
		if m.Compressed {
			f |= 2
		}
		b = append(b, f)
		b = binary.AppendUvarint(b, uint64(m.Size))
		b = binary.AppendVarint(b, m.At-prev)
		prev = m.At
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendHeaderList(b []byte, h Headers) []byte {
	b = binary.AppendUvarint(b, uint64(len(h)))
	for _, f := range h {
		b = appendString(b, f.Name)
		b = appendString(b, f.Value)
	}
	return b
}

// decodeExt decodes the 1.1 extension when the record has one, and clears
// its fields in ex when it has none (a 1.0 record, or HTTP/1 without
// trailers).
func decodeExt(d *decoder, ex *Exchange) error {
	ex.Conn.Protocol = ProtoHTTP1
	ex.Request.Trailer, ex.Response.Trailer, ex.Stream = nil, nil, nil
	if len(d.b) == 0 {
		return nil
	}
	e := decoder{b: d.bytes(d.count(1))}
	if d.err != nil {
		return d.err
	}
	ex.Conn.Protocol = Protocol(e.uvarint())
	ex.Request.Trailer = e.headerList()
	ex.Response.Trailer = e.headerList()
	if e.byte() == 1 {
		s := &Stream{ID: uint32(e.uvarint())}
		if n := e.count(2); n > 0 {
			s.Interim = make([]Interim, n)
			for i := range s.Interim {
				s.Interim[i] = Interim{Status: int(e.varint()), Header: e.headerList()}
			}
		}
		s.Reset = Abort{By: Party(e.byte()), Code: uint32(e.uvarint())}
		s.GoAway = Abort{By: Party(e.byte()), Code: uint32(e.uvarint())}
		s.Pushes = int(e.uvarint())
		if e.byte() == 1 {
			s.GRPC = e.grpc()
		}
		ex.Stream = s
	}
	// Bytes after the known extension fields belong to later versions.
	return e.err
}

func (d *decoder) grpc() *GRPC {
	g := &GRPC{HasStatus: d.byte() == 1}
	g.Status = int(d.varint())
	g.StatusMessage = d.string()
	if n := d.count(3); n > 0 {
		g.Messages = make([]Message, n)
		var at int64
		for i := range g.Messages {
			f := d.byte()
			size := d.uvarint()
			at += d.varint()
			g.Messages[i] = Message{FromServer: f&1 != 0, Compressed: f&2 != 0, Size: uint32(size), At: at}
		}
	}
	return g
}

func (d *decoder) byte() byte {
	p := d.bytes(1)
	if len(p) == 0 {
		return 0
	}
	return p[0]
}

func (d *decoder) string() string { return string(d.bytes(d.count(1))) }

func (d *decoder) headerList() Headers {
	n := d.count(2)
	if n == 0 || d.err != nil {
		return nil
	}
	h := make(Headers, n)
	for i := range h {
		h[i] = Header{Name: d.string(), Value: d.string()}
	}
	return h
}

// Connection record (kind 5, format 1.2) close bits, after the party.
const (
	connReset  = 4 // the close was an RST
	connClosed = 8 // closed_delta is known
)

// encodeConn appends c's record body (FORMAT.md, "Connection record").
func encodeConn(b []byte, c *ConnInfo) []byte {
	b = binary.AppendUvarint(b, c.ID)
	b = appendAddrPort(b, c.Client)
	b = appendAddrPort(b, c.Server)
	b = binary.AppendVarint(b, c.Opened)
	by := byte(c.ClosedBy) & 3
	if c.Reset {
		by |= connReset
	}
	var delta int64
	if c.Closed != 0 {
		by |= connClosed
		delta = c.Closed - c.Opened
	}
	b = append(b, by)
	b = binary.AppendVarint(b, delta)
	return binary.AppendUvarint(b, uint64(c.Exchanges))
}

// decodeConn reads a connection record body, ignoring bytes after the
// fields it knows.
func decodeConn(rec []byte, c *ConnInfo) error {
	d := decoder{b: rec}
	c.ID = d.uvarint()
	c.Client = d.addrPort()
	c.Server = d.addrPort()
	c.Opened = d.varint()
	by := d.byte()
	delta := d.varint()
	n := d.uvarint()
	if d.err != nil {
		return d.err
	}
	if p := Party(by & 3); p <= PartyServer {
		c.ClosedBy = p
	} else {
		return fmt.Errorf("connection %d: closed by party %d", c.ID, p)
	}
	c.Reset = by&connReset != 0
	c.Closed = 0
	if by&connClosed != 0 {
		c.Closed = c.Opened + delta
	}
	if n > 1<<40 {
		return fmt.Errorf("connection %d: %d exchanges", c.ID, n)
	}
	c.Exchanges = int(n)
	return nil
}
