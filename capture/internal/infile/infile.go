// Package infile opens the foreign capture files Reprise imports (.gor,
// HAR): their compression is told by content, never by name, since users
// rename files and GoReplay writes .gz only when asked.
package infile

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
)

// Reader returns the content of r, gunzipped when it starts with gzip's
// magic bytes, behind a buffer so callers can peek at it.
func Reader(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(2)
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("gzip header: %w", err)
	}
	return bufio.NewReaderSize(zr, 64<<10), nil
}

// Open opens the file at path and calls newReader with it; the file is
// closed again when newReader fails. The returned close closes the file.
func Open[R any](path string, newReader func(io.Reader) (R, error)) (R, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero R
		return zero, nil, err
	}
	r, err := newReader(f)
	if err != nil {
		f.Close()
		var zero R
		return zero, nil, err
	}
	return r, f.Close, nil
}

// Closer is embedded in a reader that may own its file: Close closes the
// file when Open set one, and does nothing otherwise or a second time.
type Closer struct{ close func() error }

// SetClose records the function that closes the file.
func (c *Closer) SetClose(f func() error) { c.close = f }

// Close closes the file opened with the reader, if any.
func (c *Closer) Close() error {
	f := c.close
	c.close = nil
	if f == nil {
		return nil
	}
	return f()
}
