package har

import (
	"io"
	"testing"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
	"github.com/reprise-tool/reprise/session"
)

// BenchmarkReader measures import speed in bytes of HAR per second, for
// the README's table beside gunzip of the same file.
func BenchmarkReader(b *testing.B) {
	var xs []*session.Exchange
	for range 250 {
		xs = append(xs, sample()...)
	}
	sourcetest.BenchReader[*EntryError](b, writeAll(b, xs), func(r io.Reader) (session.Source, error) { return NewReader(r) })
}
