package har

import (
	"bytes"
	"io"
	"testing"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must never panic or
// loop, damage must come as *EntryError, and what it returns must write
// back as HAR.
func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"log":{"entries":[{"startedDateTime":"2024-01-02T03:04:05Z","request":{"method":"GET","url":"http://a/"},"response":{"status":200,"content":{"text":"hi"}}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), MaxBody(1<<16))
		if err != nil {
			return // a gzip header that does not parse
		}
		xs, _, _ := sourcetest.Drain[*EntryError](t, r, len(data)+10)
		w := NewWriter(io.Discard)
		for _, x := range xs {
			if err := w.WriteExchange(x); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
