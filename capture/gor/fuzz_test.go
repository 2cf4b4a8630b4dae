package gor

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must never panic or
// loop, every error between exchanges must be a *PayloadError with an
// offset inside the input, and the exchanges it returns must write back.
func FuzzReader(f *testing.F) {
	f.Add([]byte(payload("1 aa 1 1", req1) + payload("2 aa 2 1", resp1)))
	f.Add([]byte(payload("1 aa 1", req1) + "2 aa 2\n" + resp1))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), MaxPayload(1<<16), MaxPending(4))
		if err != nil {
			return // a gzip header that does not parse
		}
		w := NewWriter(io.Discard)
		for i := 0; ; i++ {
			if i > len(data)+10 {
				t.Fatal("more results than input bytes")
			}
			x, err := r.Next()
			if err == io.EOF {
				break
			}
			var pe *PayloadError
			if errors.As(err, &pe) {
				if pe.Offset < 0 {
					t.Fatalf("offset %d", pe.Offset)
				}
				continue
			}
			if err != nil {
				return // gzip damage
			}
			if x == nil || x.Request.Method == "" {
				t.Fatalf("empty exchange %+v", x)
			}
			_ = w.WriteExchange(x)
		}
	})
}
