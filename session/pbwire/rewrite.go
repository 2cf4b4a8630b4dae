package pbwire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Replacer decides the new value of one length-delimited field (a String,
// Bytes or Message) met by Rewrite; ok false keeps the field, and for a
// Message descends into it.
type Replacer func(f *Field) (v []byte, ok bool)

// Rewrite appends to dst the message msg, whose fields Parse returned,
// with each length-delimited value that repl replaces written anew and
// the length prefix of every message enclosing a changed value
// re-encoded, however deep. Everything else is copied byte for byte as it
// was (tags, other values, even a varint written longer than needed), so
// a message with nothing replaced comes out unchanged. It returns the
// result and how many values repl replaced; an error means fields do not
// lie in msg (they must be what Parse returned for it).
//
// A value's new length may differ from the old one: that is what Rewrite
// is for (a live token or id longer or shorter than the recorded one). A
// group has no length prefix; its fields are rewritten in place between
// its start and end tags.
func Rewrite(dst, msg []byte, fields []Field, repl Replacer) ([]byte, int, error) {
	total := 0
	for i := range fields {
		f := &fields[i]
		if !inside(f, msg) {
			return dst, total, errOutside
		}
		if f.Kind.LengthDelimited() {
			if v, ok := repl(f); ok {
				dst = appendLD(dst, msg, f, v)
				total++
				continue
			}
		}
		if len(f.Fields) > 0 { // a Message or Group: its fields may change
			inner, n, err := Rewrite(nil, msg, f.Fields, repl)
			if err != nil {
				return dst, total, err
			}
			if n > 0 {
				if f.Kind == Message {
					dst = appendLD(dst, msg, f, inner)
				} else { // a group's fields lie between its start and end tags
					dst = append(dst, msg[f.Start:f.Value]...)
					dst = append(dst, inner...)
					dst = append(dst, msg[f.Value+len(f.Bytes):f.End]...)
				}
				total += n
				continue
			}
		}
		dst = append(dst, msg[f.Start:f.End]...)
	}
	return dst, total, nil
}

// inside reports whether f's offsets lie in msg as Parse sets them, so
// that rewriting f cannot slice outside msg.
func inside(f *Field, msg []byte) bool {
	if f.Start < 0 || f.Start > f.Value || f.Value > f.End || f.End > len(msg) || f.Value+len(f.Bytes) > f.End {
		return false
	}
	if f.Kind.LengthDelimited() {
		_, _, n := protowire.ConsumeTag(msg[f.Start:f.Value])
		return n > 0
	}
	return true
}

// appendLD appends length-delimited field f with value v: its tag as it
// was, then v's length and v.
func appendLD(dst, msg []byte, f *Field, v []byte) []byte {
	_, _, n := protowire.ConsumeTag(msg[f.Start:f.Value])
	dst = append(dst, msg[f.Start:f.Start+n]...)
	dst = protowire.AppendVarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// errOutside is a Field whose offsets do not lie in the message given.
var errOutside = errors.New("pbwire: field offsets outside the message: pass the bytes Parse read")

// Path names one field of a parsed message: the index in its message's
// Fields at each level, outermost first. Path{2, 0} is the first field of
// the message that is the third field.
type Path []int

// Lookup returns the field at p in fields, or nil when there is none.
func Lookup(fields []Field, p Path) *Field {
	var f *Field
	for _, i := range p {
		if i < 0 || i >= len(fields) {
			return nil
		}
		f = &fields[i]
		fields = f.Fields
	}
	return f
}

// ReplaceAt returns a copy of msg with the value of the length-delimited
// field at p replaced by v, every enclosing length re-encoded. msg is
// parsed first; an error says msg is no message or p names no
// length-delimited field of it.
func ReplaceAt(msg []byte, p Path, v []byte) ([]byte, error) {
	fields, err := Parse(msg)
	if err != nil {
		return nil, err
	}
	target := Lookup(fields, p)
	if target == nil || !target.Kind.LengthDelimited() {
		return nil, fmt.Errorf("pbwire: no length-delimited field at path %v", []int(p))
	}
	out, _, err := Rewrite(make([]byte, 0, len(msg)+len(v)+8), msg, fields, func(f *Field) ([]byte, bool) {
		return v, f == target
	})
	return out, err
}
