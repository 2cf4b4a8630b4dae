package correlate

import (
	"bytes"
	"testing"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/pbwire/pbtest"
)

// FuzzRewriteGRPC feeds arbitrary gRPC bodies and learned values through
// a table: it must never panic, never touch the recorded body, and keep
// every whole length-prefixed message whole.
func FuzzRewriteGRPC(f *testing.F) {
	id := "ord_0123456789abcdef0123"
	f.Add(id, "o", frame(false, pbtest.Message(1, pbtest.Message(1, id)), pbtest.Message(2, uint64(1))))
	f.Add(id, id+id+id+id+id+id, frame(false, pbtest.Message(3, "Bearer "+id)))
	f.Add("RECORDED-ACCESS-TOKEN-1", "L", append(frame(true, []byte("zz")), 0, 0, 0, 0, 9))
	f.Add("RECORDED-ACCESS-TOKEN-1", "L", []byte(`{"a":"RECORDED-ACCESS-TOKEN-1"}`))
	f.Fuzz(func(t *testing.T, rec, live string, body []byte) {
		tb := NewTable()
		tb.Map(rec, live)
		req := session.Request{Method: "POST", Target: "/s.S/M", Body: body,
			Header: session.Headers{{Name: "content-type", Value: "application/grpc"}}}
		before := bytes.Clone(body)
		got, _ := tb.Rewrite(&req)
		if !bytes.Equal(req.Body, before) {
			t.Fatal("recorded body modified")
		}
		if grpcMessages(got.Body) < grpcMessages(body) {
			t.Fatalf("gRPC body of %d whole messages became %d: %x", grpcMessages(body), grpcMessages(got.Body), got.Body)
		}
	})
}

// grpcMessages counts the whole length-prefixed messages at the start of b.
func grpcMessages(b []byte) int {
	n := 0
	for len(b) >= 5 {
		size := uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
		if size > uint64(len(b)-5) {
			break
		}
		b = b[5+size:]
		n++
	}
	return n
}
