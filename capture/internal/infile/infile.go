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
// closed again when newReader fails, and otherwise by the reader's Close
// (of its embedded Closer).
func Open[R interface{ SetClose(func() error) }](path string, newReader func(io.Reader) (R, error)) (R, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero R
		return zero, err
	}
	r, err := newReader(f)
	if err != nil {
		f.Close()
		var zero R
		return zero, err
	}
	r.SetClose(f.Close)
	return r, nil
}

// Settings are the options every import reader takes alike (its Name,
// MaxBody and FirstConnID options). Each reader's options struct embeds
// them and its options are made by the functions below, so the formats
// cannot drift apart on what these mean.
type Settings struct {
	Path      string // the file name used in errors; "" for a stream
	MaxBody   int64  // body bytes kept per message; longer ones are truncated and flagged
	FirstConn uint64 // the Conn.ID of the first connection given out
}

func (s *Settings) settings() *Settings { return s }

// embeds is a pointer to a reader's options struct, which embeds Settings.
type embeds[O any] interface {
	*O
	settings() *Settings
}

// Name is the option that sets the file name used in errors.
func Name[O any, P embeds[O]](path string) func(*O) error {
	return func(o *O) error { P(o).settings().Path = path; return nil }
}

// MaxBody is the option that caps the body bytes kept per message;
// format names the reader in its error.
func MaxBody[O any, P embeds[O]](format string, n int64) func(*O) error {
	return func(o *O) error {
		if n < 0 {
			return fmt.Errorf("%s: MaxBody %d: give 0 or more", format, n)
		}
		P(o).settings().MaxBody = n
		return nil
	}
}

// FirstConnID is the option that sets the first Conn.ID given out.
func FirstConnID[O any, P embeds[O]](id uint64) func(*O) error {
	return func(o *O) error { P(o).settings().FirstConn = id; return nil }
}

// Apply applies opts to o in order and stops at the first error.
func Apply[O any, F ~func(*O) error](o *O, opts []F) error {
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return err
		}
	}
	return nil
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
