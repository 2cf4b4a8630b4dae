package wire

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2/hpack"
)

// This file decodes the server's header blocks. The client advertises
// SETTINGS_HEADER_TABLE_SIZE 0, so a server may index nothing it can
// refer to later (RFC 7541 §4.2, §4.4): a block is decoded from the
// static table and its literals alone, with no state from one block to
// the next. That lets the read loop hand a stream each field as bytes
// that are valid during the call, and the stream copy only what it keeps
// (nothing but :status when only the status is asked for); hpack.Decoder
// made a string of every literal and, through the framer's
// MetaHeadersFrame, a frame and a slice of fields per block: eleven
// allocations per response of nginx's five fields.

// hpackStatic is the static table (RFC 7541 Appendix A), index 1 first.
var hpackStatic = [...][2]string{
	{":authority", ""},
	{":method", "GET"},
	{":method", "POST"},
	{":path", "/"},
	{":path", "/index.html"},
	{":scheme", "http"},
	{":scheme", "https"},
	{":status", "200"},
	{":status", "204"},
	{":status", "206"},
	{":status", "304"},
	{":status", "400"},
	{":status", "404"},
	{":status", "500"},
	{"accept-charset", ""},
	{"accept-encoding", "gzip, deflate"},
	{"accept-language", ""},
	{"accept-ranges", ""},
	{"accept", ""},
	{"access-control-allow-origin", ""},
	{"age", ""},
	{"allow", ""},
	{"authorization", ""},
	{"cache-control", ""},
	{"content-disposition", ""},
	{"content-encoding", ""},
	{"content-language", ""},
	{"content-length", ""},
	{"content-location", ""},
	{"content-range", ""},
	{"content-type", ""},
	{"cookie", ""},
	{"date", ""},
	{"etag", ""},
	{"expect", ""},
	{"expires", ""},
	{"from", ""},
	{"host", ""},
	{"if-match", ""},
	{"if-modified-since", ""},
	{"if-none-match", ""},
	{"if-range", ""},
	{"if-unmodified-since", ""},
	{"last-modified", ""},
	{"link", ""},
	{"location", ""},
	{"max-forwards", ""},
	{"proxy-authenticate", ""},
	{"proxy-authorization", ""},
	{"range", ""},
	{"referer", ""},
	{"refresh", ""},
	{"retry-after", ""},
	{"server", ""},
	{"set-cookie", ""},
	{"strict-transport-security", ""},
	{"transfer-encoding", ""},
	{"user-agent", ""},
	{"vary", ""},
	{"via", ""},
	{"www-authenticate", ""},
}

// hpackStaticBytes is hpackStatic as the bytes the emit function takes.
var hpackStaticBytes = func() (t [len(hpackStatic)][2][]byte) {
	for i, f := range hpackStatic {
		t[i] = [2][]byte{[]byte(f[0]), []byte(f[1])}
	}
	return t
}()

// errHPACK is a header block that does not decode.
var errHPACK = errors.New("hpack: malformed header block")

// hpackReader decodes header blocks under a dynamic table of size 0; its
// scratch space is reused from block to block. Its zero value is ready.
type hpackReader struct {
	scratch []byte // Huffman-decoded names and values of the current field
}

// Write appends to the scratch space (hpack.HuffmanDecode's output).
func (d *hpackReader) Write(p []byte) (int, error) {
	d.scratch = append(d.scratch, p...)
	return len(p), nil
}

// hpackSink takes a block's fields: those whose name keep accepts go to
// field, with name and value valid only during the call. A value not kept
// is not Huffman-decoded.
type hpackSink interface {
	keep(name []byte) bool
	field(name, value []byte)
}

// decode hands the fields of block to sink in order. A reference to a
// dynamic table entry (there are none), a size update above 0, a
// truncated block or bad Huffman data (in a value kept) is an error.
func (d *hpackReader) decode(block []byte, sink hpackSink) error {
	for len(block) > 0 {
		b := block[0]
		switch {
		case b&0x80 != 0: // indexed field
			i, rest, err := hpackInt(block, 7)
			if err != nil {
				return err
			}
			if i == 0 || i > uint64(len(hpackStatic)) {
				return hpackIndexError(i)
			}
			block = rest
			if f := &hpackStaticBytes[i-1]; sink.keep(f[0]) {
				sink.field(f[0], f[1])
			}
		case b&0xe0 == 0x20: // dynamic table size update
			size, rest, err := hpackInt(block, 5)
			if err != nil {
				return err
			}
			if size > 0 {
				return fmt.Errorf("%w: table size update to %d above the advertised 0", errHPACK, size)
			}
			block = rest
		default: // a literal: with incremental indexing (01), without (0000) or never indexed (0001)
			prefix := uint8(4)
			if b&0xc0 == 0x40 {
				prefix = 6
			}
			i, rest, err := hpackInt(block, prefix)
			if err != nil {
				return err
			}
			d.scratch = d.scratch[:0]
			var name, value []byte
			if i > 0 {
				if i > uint64(len(hpackStatic)) {
					return hpackIndexError(i)
				}
				name = hpackStaticBytes[i-1][0]
			} else if name, rest, err = d.str(rest, true); err != nil {
				return err
			}
			keep := sink.keep(name)
			if value, rest, err = d.str(rest, keep); err != nil {
				return err
			}
			block = rest
			// Adding the field to a table of size 0 empties the table,
			// which is empty (RFC 7541 §4.4): nothing to do.
			if keep {
				sink.field(name, value)
			}
		}
	}
	return nil
}

// hpackIndexError is a field index past the static table: the dynamic
// table is empty.
func hpackIndexError(i uint64) error {
	return fmt.Errorf("%w: index %d refers to the dynamic table, though the client advertised SETTINGS_HEADER_TABLE_SIZE 0", errHPACK, i)
}

// str reads a string literal at the start of p: the raw bytes, or, when
// decode is set, those Huffman-decoded into the scratch space (valid
// until the next field).
func (d *hpackReader) str(p []byte, decode bool) (s, rest []byte, err error) {
	if len(p) == 0 {
		return nil, nil, errHPACK
	}
	huff := p[0]&0x80 != 0
	n, p, err := hpackInt(p, 7)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(len(p)) {
		return nil, nil, fmt.Errorf("%w: a string of %d bytes with %d left", errHPACK, n, len(p))
	}
	s, rest = p[:n], p[n:]
	if !huff || !decode {
		return s, rest, nil
	}
	from := len(d.scratch)
	if _, err := hpack.HuffmanDecode(d, s); err != nil {
		return nil, nil, err
	}
	return d.scratch[from:], rest, nil
}

// hpackInt reads an integer of an n-bit prefix at the start of p (RFC
// 7541 §5.1), at most 2^32-1: no field, size or index is larger.
func hpackInt(p []byte, n uint8) (uint64, []byte, error) {
	if len(p) == 0 {
		return 0, nil, errHPACK
	}
	mask := uint64(1)<<n - 1
	v := uint64(p[0]) & mask
	p = p[1:]
	if v < mask {
		return v, p, nil
	}
	for shift := uint(0); ; shift += 7 {
		if len(p) == 0 || shift >= 63 {
			return 0, nil, fmt.Errorf("%w: a truncated integer", errHPACK)
		}
		b := p[0]
		p = p[1:]
		v += uint64(b&0x7f) << shift
		if v > 1<<32-1 {
			return 0, nil, fmt.Errorf("%w: an integer too large", errHPACK)
		}
		if b&0x80 == 0 {
			return v, p, nil
		}
	}
}
