package session

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"testing"
)

// TestAppendExchangeSameRecord checks the Writer's in-place record
// assembly against encodeExchange: the same bytes for HTTP/1 exchanges,
// an HTTP/2 one with its extension, bodies over the cap, and an empty one.
func TestAppendExchangeSameRecord(t *testing.T) {
	c := newCorpus(7)
	exs := []*Exchange{{}}
	for range 50 {
		exs = append(exs, c.next())
	}
	h2 := *c.next()
	h2.Conn.Protocol = ProtoH2
	h2.Request.Body = bytes.Repeat([]byte("q"), 1000)
	h2.Response.Trailer = Headers{{Name: "grpc-status", Value: "0"}}
	h2.Stream = &Stream{ID: 3, Interim: []Interim{{Status: 103, Header: Headers{{Name: "link", Value: "</a>"}}}},
		GRPC: &GRPC{HasStatus: true, StatusMessage: "ok", Messages: []Message{{Size: 5, At: 7}, {FromServer: true, Size: 9, At: 11}}}}
	exs = append(exs, &h2)
	for _, bodyCap := range []int{0, 300, DefaultBodyCap} {
		w, err := NewWriter(io.Discard, Metadata{}, BodyCap(bodyCap))
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		w.raw = w.raw[:0]
		for i, ex := range exs {
			rec := encodeExchange(nil, ex, bodyCap)
			want = binary.AppendUvarint(want, uint64(KindExchange))
			want = binary.AppendUvarint(want, uint64(len(rec)))
			want = append(want, rec...)
			if err := w.appendExchange(ex); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.raw, want) {
				t.Fatalf("cap %d, exchange %d: the block's record differs from encodeExchange's", bodyCap, i)
			}
		}
	}
}

func TestUvarintLen(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<63 - 1, math.MaxUint64} {
		if got, want := uvarintLen(v), len(binary.AppendUvarint(nil, v)); got != want {
			t.Errorf("uvarintLen(%d) = %d, want %d", v, got, want)
		}
	}
}
