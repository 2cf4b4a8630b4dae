// Package sourcetest holds test helpers shared by the readers of foreign
// capture files (capture/gor, capture/har).
package sourcetest

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// Drain reads src to its end and returns the exchanges and the damage
// reports of type E (a reader's typed error) it gave on the way, and any
// other error, which ends the reading. A source that does not end within
// limit results, or returns an empty exchange, fails the test.
func Drain[E error](t testing.TB, src session.Source, limit int) ([]*session.Exchange, []E, error) {
	t.Helper()
	var xs []*session.Exchange
	var errs []E
	for range limit {
		x, err := src.Next()
		if err == io.EOF {
			return xs, errs, nil
		}
		var e E
		if errors.As(err, &e) {
			errs = append(errs, e)
			continue
		}
		if err != nil {
			return xs, errs, err
		}
		if x == nil || x.Request.Method == "" {
			t.Fatalf("empty exchange %+v", x)
		}
		xs = append(xs, x)
	}
	t.Fatalf("the source did not end within %d results", limit)
	return nil, nil, nil
}

// WriteAll writes xs to w and closes it, failing the test on an error.
func WriteAll(t testing.TB, w interface {
	session.Sink
	Close() error
}, xs []*session.Exchange) {
	t.Helper()
	for _, x := range xs {
		if err := w.WriteExchange(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchReader measures a reader over data in bytes per second: newReader
// makes a reader of the bytes, and E is its damage type.
func BenchReader[E error](b *testing.B, data []byte, newReader func(io.Reader) (session.Source, error)) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := newReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Drain[E](b, r, 1<<24); err != nil {
			b.Fatal(err)
		}
	}
}
