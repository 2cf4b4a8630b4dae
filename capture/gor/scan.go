package gor

import (
	"bytes"
	"io"
)

// What scanner.next found.
const (
	scanOK       = iota // a payload ended by a separator
	scanPartial         // the bytes after the last separator (the file was cut)
	scanTooLarge        // a payload over the limit, skipped to the next separator
	scanEnd             // nothing more (err says why, nil for a clean end)
)

var sep = []byte(Separator)

// scanner splits a stream into payloads on Separator, holding at most one
// payload (plus one read) in memory.
type scanner struct {
	r        io.Reader
	buf      []byte
	start    int   // buf[start:] is not yet consumed
	off      int64 // stream offset of buf[start]
	searched int   // bytes of buf[start:] known to hold no separator start
	eof      bool
	err      error
}

// next returns the next payload, without its separator, and its offset. The
// bytes are valid until the next call.
func (s *scanner) next(limit int) (p []byte, off int64, res int, err error) {
	skipping := false
	var skipOff int64
	for {
		data := s.buf[s.start:]
		if i := bytes.Index(data[s.searched:], sep); i >= 0 {
			i += s.searched
			off = s.off
			s.start += i + len(sep)
			s.off += int64(i + len(sep))
			s.searched = 0
			switch {
			case skipping:
				return nil, skipOff, scanTooLarge, nil
			case i > limit:
				return nil, off, scanTooLarge, nil
			}
			return data[:i], off, scanOK, nil
		}
		s.searched = max(0, len(data)-len(sep)+1)
		if s.eof {
			off = s.off
			s.start = len(s.buf)
			s.off += int64(len(data))
			s.searched = 0
			switch {
			case skipping:
				return nil, skipOff, scanTooLarge, nil
			case len(data) > 0:
				return data, off, scanPartial, nil
			}
			return nil, off, scanEnd, s.err
		}
		if len(data) > limit {
			// Drop what cannot hold the separator's start; keep looking
			// for the end of this payload.
			if !skipping {
				skipping, skipOff = true, s.off
			}
			drop := s.searched
			s.start += drop
			s.off += int64(drop)
			s.searched = 0
		}
		s.fill()
	}
}

// fill moves the unconsumed bytes to the front and reads more.
func (s *scanner) fill() {
	if s.start > 0 {
		n := copy(s.buf, s.buf[s.start:])
		s.buf = s.buf[:n]
		s.start = 0
	}
	if cap(s.buf)-len(s.buf) < 32<<10 {
		nb := make([]byte, len(s.buf), 2*cap(s.buf)+64<<10)
		copy(nb, s.buf)
		s.buf = nb
	}
	n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
	s.buf = s.buf[:len(s.buf)+n]
	if err != nil {
		s.eof = true
		if err != io.EOF {
			s.err = err
		}
	}
}
