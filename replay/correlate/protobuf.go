package correlate

import (
	"encoding/binary"
	"encoding/json"

	"github.com/reprise-tool/reprise/session/pbwire"
)

// grpcPrefix is the length of a gRPC message's prefix: a compressed flag
// and a 4-byte big-endian length.
const grpcPrefix = 5

// rewriteGRPC substitutes live values into a gRPC request body: each
// length-prefixed message is read without a schema (session/pbwire) and
// every string or bytes field whose whole value has a live counterpart
// takes it (a long token-like value inside a field's text is replaced
// too), the message re-encoded with the new lengths of the fields and
// messages that enclose it and its own prefix written anew. The live value
// may be longer or shorter than the recorded one.
//
// A message that is not protobuf has its tokens replaced as in other
// bodies (JSON values by whole value when it is JSON); a compressed one
// (flag 1) is sent as recorded; bytes after the last whole message (a
// body cut by the recording's limit) are kept as they were.
func (t *Table) rewriteGRPC(body []byte, sub subFunc, rw *Rewrite) []byte {
	out := make([]byte, 0, len(body))
	rest := body
	for len(rest) >= grpcPrefix {
		n := binary.BigEndian.Uint32(rest[1:grpcPrefix])
		if uint64(n) > uint64(len(rest)-grpcPrefix) {
			break
		}
		msg := rest[grpcPrefix : grpcPrefix+int(n)]
		if rest[0]&1 == 0 {
			msg = t.rewriteMessage(msg, sub, rw)
		}
		out = append(out, rest[0])
		out = binary.BigEndian.AppendUint32(out, uint32(len(msg)))
		out = append(out, msg...)
		rest = rest[grpcPrefix+int(n):]
	}
	return append(out, rest...)
}

// rewriteMessage substitutes live values in one uncompressed gRPC message.
func (t *Table) rewriteMessage(msg []byte, sub subFunc, rw *Rewrite) []byte {
	if looksJSON(msg) && json.Valid(msg) { // application/grpc+json
		return rewriteJSON(msg, func(_, v string) (string, bool) {
			nv, _, ok := sub(v)
			return nv, ok
		})
	}
	fields, err := pbwire.Parse(msg)
	if err != nil || len(fields) == 0 {
		if t.tokens.len() == 0 {
			return msg
		}
		return []byte(t.replaceTokens(string(msg), rw))
	}
	out, _, err := pbwire.Rewrite(make([]byte, 0, len(msg)), msg, fields, func(f *pbwire.Field) ([]byte, bool) {
		v := string(f.Bytes)
		if nv, _, ok := sub(v); ok {
			return []byte(nv), nv != v
		}
		if f.Kind == pbwire.Message || t.tokens.len() == 0 {
			return nil, false // descend into a message's fields
		}
		if nv := t.replaceTokens(v, rw); nv != v {
			return []byte(nv), true
		}
		return nil, false
	})
	if err != nil {
		return msg // cannot happen: fields are msg's own
	}
	return out
}
