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

// marker is the separator's line. Like GoReplay's reader, a payload ends
// at a line equal to it; the newline before that line is not part of the
// payload, so Separator ends a payload written with a newline or without.
var marker = []byte(Separator[1:])

// firstMarker returns the index of the first marker line in b, which
// starts at a line start, or -1. from is where to start looking.
func firstMarker(b []byte, from int) int {
	for {
		i := bytes.Index(b[from:], marker)
		if i < 0 {
			return -1
		}
		i += from
		if i == 0 || b[i-1] == '\n' {
			return i
		}
		from = i + 1
	}
}

// scanner splits a stream into payloads on marker lines, holding at most
// one payload (plus one read) in memory.
type scanner struct {
	r        io.Reader
	buf      []byte
	start    int   // buf[start:] is not yet consumed, and starts a line
	off      int64 // stream offset of buf[start]
	searched int   // bytes of buf[start:] known to hold no marker start
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
		if i := firstMarker(data, s.searched); i >= 0 {
			off = s.off
			s.start += i + len(marker)
			s.off += int64(i + len(marker))
			s.searched = 0
			switch {
			case skipping:
				return nil, skipOff, scanTooLarge, nil
			case i > limit:
				return nil, off, scanTooLarge, nil
			case i == 0:
				return nil, off, scanOK, nil
			}
			return data[:i-1], off, scanOK, nil
		}
		s.searched = max(0, len(data)-len(marker))
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
			// Drop what cannot hold a marker's start (keeping the byte
			// before it, which says whether it starts a line); keep
			// looking for the end of this payload.
			if !skipping {
				skipping, skipOff = true, s.off
			}
			drop := max(0, s.searched-1)
			s.start += drop
			s.off += int64(drop)
			s.searched -= drop
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
