// Package pbtest builds protobuf messages for tests without a schema, as
// session/http2/h2test builds HTTP/2 frames.
package pbtest

import "google.golang.org/protobuf/encoding/protowire"

// Message encodes (number, value) pairs in order: an int number, then a
// uint64 (a varint), uint32 (a fixed32), float64 (its integer value as a
// fixed64), string or []byte (length-delimited: a nested message is its
// bytes). Other value types panic, as a test's typo should.
func Message(kv ...any) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		n := protowire.Number(kv[i].(int))
		switch v := kv[i+1].(type) {
		case uint64:
			b = protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
		case uint32:
			b = protowire.AppendFixed32(protowire.AppendTag(b, n, protowire.Fixed32Type), v)
		case float64:
			b = protowire.AppendFixed64(protowire.AppendTag(b, n, protowire.Fixed64Type), uint64(v))
		case string:
			b = protowire.AppendString(protowire.AppendTag(b, n, protowire.BytesType), v)
		case []byte:
			b = protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), v)
		default:
			panic("pbtest: value of an unknown type")
		}
	}
	return b
}
