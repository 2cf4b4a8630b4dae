package correlate

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/pbwire/pbtest"
)

// frame makes a gRPC body of messages, flag 0 unless compressed.
func frame(compressed bool, msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		flag := byte(0)
		if compressed {
			flag = 1
		}
		b = append(binary.BigEndian.AppendUint32(append(b, flag), uint32(len(m))), m...)
	}
	return b
}

// gz compresses b as a gRPC client does for grpc-encoding gzip.
func gz(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// TestRewriteGRPC: live values of another length go into gRPC messages
// with every length fixed (the fields', the enclosing messages', the
// 5-byte prefixes); what holds no learned value keeps its bytes.
func TestRewriteGRPC(t *testing.T) {
	recTok, liveTok := "at_0123456789abcdef0123", "at_"+strings.Repeat("L", 150) // 2-byte varint length live
	recID, liveID := "ord_0123456789abcdef", "ord_9"
	tests := []struct {
		name     string
		body     []byte
		want     []byte
		replaced int
	}{
		// An id nested in a message shrinks; a token at the top grows.
		{"nested", frame(false, pbtest.Message(1, pbtest.Message(1, recID, 2, uint64(3)), 2, recTok)),
			frame(false, pbtest.Message(1, pbtest.Message(1, liveID, 2, uint64(3)), 2, liveTok)), 2},
		// Two messages of a client stream, each re-prefixed.
		{"stream", frame(false, pbtest.Message(1, recID), pbtest.Message(1, "chunk"), pbtest.Message(1, recTok)),
			frame(false, pbtest.Message(1, liveID), pbtest.Message(1, "chunk"), pbtest.Message(1, liveTok)), 2},
		// A token inside a field's text is replaced within it.
		{"inside text", frame(false, pbtest.Message(3, "Bearer "+recTok)), frame(false, pbtest.Message(3, "Bearer "+liveTok)), 1},
		// A gzip'd message is rewritten inside its gzip.
		{"gzip", frame(true, gz(pbtest.Message(1, recID))), frame(true, gz(pbtest.Message(1, liveID))), 1},
		// A compressed message in another encoding is sent as recorded.
		{"compressed", frame(true, pbtest.Message(1, recID)), frame(true, pbtest.Message(1, recID)), 0},
		// JSON messages (application/grpc+json) by whole JSON value.
		{"json", frame(false, []byte(`{"id":"`+recID+`"}`)), frame(false, []byte(`{"id":"`+liveID+`"}`)), 1},
		// A cut last message stays as it was; the whole one before it is rewritten.
		{"cut", append(frame(false, pbtest.Message(1, recID)), 0, 0, 0, 0, 99, 1, 2),
			append(frame(false, pbtest.Message(1, liveID)), 0, 0, 0, 0, 99, 1, 2), 1},
		// Nothing learned inside: byte for byte.
		{"untouched", frame(false, pbtest.Message(1, "ord_other_value_here", 2, uint64(1))),
			frame(false, pbtest.Message(1, "ord_other_value_here", 2, uint64(1))), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewTable()
			tab.Map(recTok, liveTok)
			tab.Map(recID, liveID)
			req := session.Request{Method: "POST", Target: "/shop.Shop/GetOrder", Body: tc.body, BodySize: int64(len(tc.body)),
				Header: session.Headers{{Name: "content-type", Value: "application/grpc+proto"}}}
			out, rw := tab.Rewrite(&req)
			if !bytes.Equal(out.Body, tc.want) {
				t.Errorf("body\ngot  %x\nwant %x", out.Body, tc.want)
			}
			if rw.Substituted != tc.replaced || out.BodySize != int64(len(tc.want)) {
				t.Errorf("%d substituted, body size %d; want %d, %d", rw.Substituted, out.BodySize, tc.replaced, len(tc.want))
			}
			if !bytes.Equal(req.Body, tc.body) {
				t.Error("the recorded body changed")
			}
		})
	}
}

// A recorded id with no live counterpart inside a message makes the
// request uncorrelated, as in JSON.
func TestRewriteGRPCOrphan(t *testing.T) {
	tab := NewTable()
	rec := &session.Response{Header: session.Headers{{Name: "content-type", Value: "application/json"}}, Body: []byte(`{"order_id":"ord_0123456789abcdef"}`)}
	tab.Learn(rec, nil)
	req := session.Request{Header: session.Headers{{Name: "content-type", Value: "application/grpc"}}, Body: frame(false, pbtest.Message(1, "ord_0123456789abcdef"))}
	if _, rw := tab.Rewrite(&req); len(rw.Orphans) != 1 {
		t.Errorf("orphans %v, want the recorded id", rw.Orphans)
	}
}
