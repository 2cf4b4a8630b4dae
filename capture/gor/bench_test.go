package gor

import (
	"bytes"
	"testing"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
	"github.com/reprise-tool/reprise/session"
)

// BenchmarkReader measures import speed in bytes of .gor per second, for
// the README's table beside gunzip of the same file.
func BenchmarkReader(b *testing.B) {
	var xs []*session.Exchange
	for range 250 {
		xs = append(xs, sample()...)
	}
	data := writeAll(b, xs)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := sourcetest.Drain[*PayloadError](b, r, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
