package har

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must never panic or
// loop, every error must be an *EntryError, and what it returns must
// write back as HAR.
func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"log":{"entries":[{"startedDateTime":"2024-01-02T03:04:05Z","request":{"method":"GET","url":"http://a/"},"response":{"status":200,"content":{"text":"hi"}}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), MaxBody(1<<16))
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
			var ee *EntryError
			if errors.As(err, &ee) {
				continue
			}
			if err != nil {
				return // gzip damage
			}
			if x == nil || x.Request.Method == "" {
				t.Fatalf("empty exchange %+v", x)
			}
			if err := w.WriteExchange(x); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
