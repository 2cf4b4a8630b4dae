package gor

import (
	"bytes"
	"io"
	"testing"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must never panic or
// loop, damage must come as *PayloadError with an offset inside the input,
// and the exchanges it returns must write back.
func FuzzReader(f *testing.F) {
	f.Add([]byte(payload("1 aa 1 1", req1) + payload("2 aa 2 1", resp1)))
	f.Add([]byte(payload("1 aa 1", req1) + "2 aa 2\n" + resp1))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), MaxPayload(1<<16), MaxPending(4))
		if err != nil {
			return // a gzip header that does not parse
		}
		xs, errs, _ := sourcetest.Drain[*PayloadError](t, r, len(data)+10)
		for _, e := range errs {
			if e.Offset < 0 || e.Offset > r.Stats().Bytes {
				t.Fatalf("offset %d of %d bytes", e.Offset, r.Stats().Bytes)
			}
		}
		w := NewWriter(io.Discard)
		for _, x := range xs {
			_ = w.WriteExchange(x) // ErrSeparatorInBody is allowed
		}
	})
}
