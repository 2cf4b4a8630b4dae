package correlate

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"

	"github.com/reprise-tool/reprise/session"
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
// (flag 1) is rewritten the same way inside its gzip (grpc-encoding gzip,
// the one every gRPC implementation has) and compressed again, and sent
// as recorded in another encoding; bytes after the last whole message (a
// body cut by the recording's limit) are kept as they were.
func (t *Table) rewriteGRPC(body []byte, sub subFunc, rw *Rewrite, run *runRead) []byte {
	out := make([]byte, 0, len(body))
	rest := body
	for len(rest) >= grpcPrefix {
		n := binary.BigEndian.Uint32(rest[1:grpcPrefix])
		if uint64(n) > uint64(len(rest)-grpcPrefix) {
			break
		}
		msg := rest[grpcPrefix : grpcPrefix+int(n)]
		if rest[0]&1 == 0 {
			msg = t.rewriteMessage(msg, sub, rw, run)
		} else {
			msg = t.rewriteGzipped(msg, sub, rw, run)
		}
		out = append(out, rest[0])
		out = binary.BigEndian.AppendUint32(out, uint32(len(msg)))
		out = append(out, msg...)
		rest = rest[grpcPrefix+int(n):]
	}
	return append(out, rest...)
}

// rewriteMessage substitutes live values in one uncompressed gRPC message.
func (t *Table) rewriteMessage(msg []byte, sub subFunc, rw *Rewrite, run *runRead) []byte {
	if looksJSON(msg) && json.Valid(msg) { // application/grpc+json
		return rewriteJSON(msg, func(_, v string) (string, bool) {
			nv, _, ok := sub(v)
			return nv, ok
		})
	}
	fields, err := pbwire.Parse(msg)
	if err != nil || len(fields) == 0 {
		if t.noTokens(run) {
			return msg
		}
		return []byte(t.replaceTokens(string(msg), sub, rw, run))
	}
	out, _, err := pbwire.Rewrite(make([]byte, 0, len(msg)), msg, fields, func(f *pbwire.Field) ([]byte, bool) {
		v := string(f.Bytes)
		if nv, _, ok := sub(v); ok {
			return []byte(nv), nv != v
		}
		if f.Kind == pbwire.Message || t.noTokens(run) {
			return nil, false // descend into a message's fields
		}
		if nv := t.replaceTokens(v, sub, rw, run); nv != v {
			return []byte(nv), true
		}
		return nil, false
	})
	if err != nil {
		return msg // cannot happen: fields are msg's own
	}
	return out
}

// maxGzipped bounds a compressed message's decompressed size.
const maxGzipped = 16 << 20

// rewriteGzipped substitutes live values in a compressed message when it
// is gzip (by its magic number: the message itself does not name its
// encoding) and something changed, compressing the result again;
// otherwise it returns the message as it was.
func (t *Table) rewriteGzipped(msg []byte, sub subFunc, rw *Rewrite, run *runRead) []byte {
	if len(msg) < 2 || msg[0] != 0x1f || msg[1] != 0x8b {
		return msg
	}
	plain, err := session.DecodeBody("gzip", msg, maxGzipped)
	if err != nil {
		return msg
	}
	out := t.rewriteMessage(plain, sub, rw, run)
	if bytes.Equal(out, plain) {
		return msg
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(out)
	if zw.Close() != nil {
		return msg
	}
	return b.Bytes()
}
