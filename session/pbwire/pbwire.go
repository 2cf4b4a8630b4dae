// Package pbwire reads protobuf messages without their schema, as
// `protoc --decode_raw` does: field numbers and wire types only. A
// recording holds gRPC and protobuf bodies but never their .proto files,
// so comparing two answers field by field (replay/compare) and finding
// values that one response issues and a later request carries (the
// correlation of HTTP/2 sessions) both start from this reading.
//
// A length-delimited field is ambiguous on the wire: a string, raw bytes,
// a nested message or packed scalars look alike. Parse decides by the
// bytes: printable text (valid UTF-8 without control characters) is a
// string; otherwise a value that parses whole as a message is one, the
// rest is text with line breaks (a string) or bytes. A nested message
// whose bytes are all printable is read as a string: its field numbers
// would have to be 4 or more and every length and value printable, which
// real messages seldom are, whereas printable strings that happen to parse
// as messages are common ("hi" is field 13 = 105).
//
// Every Field records where its bytes lie in the parsed buffer, so a
// caller can re-encode a message with one value replaced (and the lengths
// of its enclosing messages adjusted) without a schema.
package pbwire

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Kind is how Parse read a field's value.
type Kind uint8

// The kinds of value.
const (
	Varint  Kind = iota + 1 // wire type 0; Scalar holds it
	Fixed32                 // wire type 5; Scalar holds it
	Fixed64                 // wire type 1; Scalar holds it
	String                  // length-delimited text; Bytes holds it
	Bytes                   // length-delimited, neither text nor a message
	Message                 // length-delimited that parsed whole; Fields holds it
	Group                   // a start-group .. end-group field (proto2); Fields holds it
)

var kindNames = [...]string{"", "varint", "fixed32", "fixed64", "string", "bytes", "message", "group"}

// String names the kind as reports print it.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// LengthDelimited reports whether the kind was sent with a length prefix
// (String, Bytes, Message): the kinds Parse may read one value as any of.
func (k Kind) LengthDelimited() bool { return k == String || k == Bytes || k == Message }

// Field is one field of a message as it was on the wire.
type Field struct {
	Num  protowire.Number
	Kind Kind
	// Start is the offset of the field's tag in the buffer given to Parse,
	// Value that of its value (after the tag and any length prefix), End
	// the offset just past it.
	Start, Value, End int
	// Scalar is a Varint, Fixed32 or Fixed64 value.
	Scalar uint64
	// Bytes is a length-delimited or group value's bytes, aliasing the
	// buffer given to Parse.
	Bytes []byte
	// Fields are a Message's or Group's fields.
	Fields []Field
}

// Limits of one Parse, so a hostile body costs bounded time and memory.
const (
	// MaxDepth bounds the nesting of messages and groups read.
	MaxDepth = 32
	// MaxFields bounds the fields read in one Parse, nested ones included
	// (and those of nested attempts that turned out not to be messages).
	MaxFields = 1 << 17
)

// Errors of Parse.
var (
	// ErrMalformed means the bytes are not a protobuf message: a bad tag,
	// field number 0, a reserved wire type, a value cut short or an
	// unmatched end-group.
	ErrMalformed = errors.New("pbwire: not a protobuf message")
	// ErrTooLarge means the message holds more than MaxFields fields or is
	// nested deeper than MaxDepth.
	ErrTooLarge = errors.New("pbwire: message too large or too deep to read")
)

// Parse reads b as one protobuf message. An empty b is the empty message.
func Parse(b []byte) ([]Field, error) {
	p := parser{budget: MaxFields}
	return p.fields(b, 0, 0)
}

type parser struct{ budget int }

// fields reads the whole of b, which starts at offset base of the outer
// buffer, as the fields of one message at depth d.
func (p *parser) fields(b []byte, base, d int) ([]Field, error) {
	if d > MaxDepth {
		return nil, ErrTooLarge
	}
	var out []Field
	for off := 0; off < len(b); {
		if p.budget--; p.budget < 0 {
			return nil, ErrTooLarge
		}
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return nil, ErrMalformed
		}
		f := Field{Num: num, Start: base + off}
		v := off + n
		switch typ {
		case protowire.VarintType:
			f.Kind = Varint
			f.Scalar, n = protowire.ConsumeVarint(b[v:])
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b[v:])
			f.Kind, f.Scalar = Fixed32, uint64(x)
		case protowire.Fixed64Type:
			f.Kind = Fixed64
			f.Scalar, n = protowire.ConsumeFixed64(b[v:])
		case protowire.BytesType:
			f.Bytes, n = protowire.ConsumeBytes(b[v:])
			if n >= 0 {
				f.Value = base + v + n - len(f.Bytes) // past the length prefix
				f.Kind, f.Fields = p.classify(f.Bytes, f.Value, d)
			}
		case protowire.StartGroupType:
			f.Bytes, n = protowire.ConsumeGroup(num, b[v:])
			if n >= 0 {
				var err error
				f.Kind = Group
				if f.Fields, err = p.fields(f.Bytes, base+v, d+1); err != nil {
					return nil, err
				}
			}
		default: // an end-group without its start, or a reserved type
			return nil, ErrMalformed
		}
		if n < 0 {
			return nil, ErrMalformed
		}
		if f.Value == 0 {
			f.Value = base + v
		}
		off = v + n
		f.End = base + off
		out = append(out, f)
	}
	return out, nil
}

// classify decides what a length-delimited value at offset base is (see
// the package doc).
func (p *parser) classify(b []byte, base, d int) (Kind, []Field) {
	switch {
	case len(b) == 0:
		return Message, nil // proto3 omits empty strings; an empty message is sent when set
	case text(b, false):
		return String, nil
	}
	if fs, err := p.fields(b, base, d+1); err == nil {
		return Message, fs
	}
	if text(b, true) {
		return String, nil
	}
	return Bytes, nil
}

// text reports whether b is valid UTF-8 without control characters;
// breaks allows tabs and line breaks.
func text(b []byte, breaks bool) bool {
	for _, c := range b {
		if c < 0x20 && !(breaks && (c == '\t' || c == '\n' || c == '\r')) || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(b)
}
