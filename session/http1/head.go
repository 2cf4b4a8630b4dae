package http1

import (
	"bufio"
	"errors"
	"strconv"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// ParseHead parses a whole message head held in memory (start line, field
// lines, the empty line, each ended by CRLF or a bare LF) for a recorder:
// the start line, the fields with names in their case and repeated fields
// in order, their framing in f (which it resets, keeping f.HTTP10 for the
// caller to set after reading the start line), and every line it did not
// take as a field given to bad: a FoldLine (joined to the field before it
// with one space, whose name it then gives), a BadName or a BadLine
// (skipped). The strings share head's memory: convert once, parse for
// free.
func ParseHead(head string, f *Framing, bad func(kind int, line string)) (start string, hdr session.Headers) {
	f.Reset()
	nl := strings.IndexByte(head, '\n')
	if nl < 0 {
		return TrimEOL(head), nil
	}
	start, head = TrimEOL(head[:nl]), head[nl+1:]
	hdr = make(session.Headers, 0, strings.Count(head, "\n"))
	skipped := "" // the name of a field skipped for its name, which folding continues
	for len(head) > 0 {
		nl = strings.IndexByte(head, '\n')
		if nl < 0 {
			nl = len(head) - 1
		}
		line := TrimEOL(head[:nl+1])
		head = head[nl+1:]
		if line == "" {
			break
		}
		name, value, kind := SplitField(line)
		switch kind {
		case FieldLine:
			hdr = append(hdr, session.Header{Name: name, Value: value})
			skipped = ""
			continue
		case BadName:
			skipped = name
		case FoldLine:
			if skipped != "" {
				f.FoldedField()
				if bad != nil {
					bad(FoldLine, skipped)
				}
				continue
			}
			if n := len(hdr); n > 0 {
				if value != "" {
					hdr[n-1].Value += " " + value
				}
				f.FoldedField()
				if bad != nil {
					bad(FoldLine, hdr[n-1].Name)
				}
				continue
			}
			kind = BadLine
		}
		if kind == BadLine {
			skipped = ""
		}
		if bad != nil {
			bad(kind, line)
		}
	}
	for _, h := range hdr {
		f.AddString(h.Name, h.Value)
	}
	return start, hdr
}

// Errors of HeadReader.
var (
	// ErrMalformed means a status line or a field line is not HTTP/1.
	ErrMalformed = errors.New("http1: malformed message head")
	// ErrTooManyFields means a head held more than MaxFields fields.
	ErrTooManyFields = errors.New("http1: too many header fields")
)

// MaxFields bounds the fields of a head that HeadReader reads.
const MaxFields = 1000

// HeadReader reads response heads from a bufio.Reader for a client, in
// place: each field line is copied into one buffer reused from one head to
// the next, and the framing read from those bytes, so reading a head whose
// fields nobody keeps allocates nothing. It is strict: a malformed line
// is an error, as in net/http's client (a name with a space in it is
// let through, as net/http lets it through in responses).
type HeadReader struct {
	KeepReason bool // keep the reason phrase in StatusHead.Reason (it allocates)

	raw   []byte // field names and values, one after another
	spans []span // the fields in raw
}

// span locates one field in raw: name at [name:value), value at
// [value:end).
type span struct{ name, value, end int }

// StatusHead is what ReadResponse read.
type StatusHead struct {
	Proto  string // HTTP/1.1, HTTP/1.0 or the line's own HTTP/1.x
	Status int
	Reason string // with KeepReason
	Framing
}

// ReadResponse reads a status line and its header fields up to the empty
// line, and the framing they say.
func (h *HeadReader) ReadResponse(r *bufio.Reader, s *StatusHead) error {
	s.Framing.Reset()
	line, err := ReadLine(r)
	if err != nil {
		return err
	}
	proto, status, reason, ok := ParseStatusLine(line)
	if !ok {
		return malformed("status line", line)
	}
	s.Status, s.Reason = status, ""
	if h.KeepReason {
		s.Reason = string(reason)
	}
	switch proto[7] {
	case '1':
		s.Proto = "HTTP/1.1"
	case '0':
		s.Proto = "HTTP/1.0"
		s.HTTP10 = true
	default:
		s.Proto = string(proto)
	}
	return h.readFields(r, &s.Framing)
}

func (h *HeadReader) readFields(r *bufio.Reader, f *Framing) error {
	h.raw, h.spans = h.raw[:0], h.spans[:0]
	for {
		line, err := ReadLine(r)
		if err != nil {
			return unexpected(err)
		}
		if len(line) == 0 {
			break
		}
		name, value, kind := SplitField(line)
		switch kind {
		case FoldLine:
			if len(h.spans) == 0 {
				return malformed("continuation line", line)
			}
			if len(value) > 0 {
				h.raw = append(h.raw, ' ')
				h.raw = append(h.raw, value...)
				h.spans[len(h.spans)-1].end = len(h.raw)
			}
			f.FoldedField()
			continue
		case BadLine:
			return malformed("header line", line)
		}
		if len(h.spans) == MaxFields {
			return ErrTooManyFields
		}
		sp := span{name: len(h.raw)}
		h.raw = append(h.raw, name...)
		sp.value = len(h.raw)
		h.raw = append(h.raw, value...)
		sp.end = len(h.raw)
		h.spans = append(h.spans, sp)
	}
	for _, sp := range h.spans {
		f.Add(h.raw[sp.name:sp.value], h.raw[sp.value:sp.end])
	}
	return nil
}

// Headers returns the fields of the last head read; their names and
// values share one string.
func (h *HeadReader) Headers() session.Headers {
	if len(h.spans) == 0 {
		return nil
	}
	block := string(h.raw)
	hdr := make(session.Headers, len(h.spans))
	for i, sp := range h.spans {
		hdr[i] = session.Header{Name: block[sp.name:sp.value], Value: block[sp.value:sp.end]}
	}
	return hdr
}

// MalformedError is a head line that is not HTTP/1; it matches
// ErrMalformed with errors.Is.
type MalformedError struct {
	What string // "status line", "header line", ...
	Line string // the line, cut to 64 bytes
}

func (e *MalformedError) Error() string {
	return "http1: malformed " + e.What + " " + strconv.Quote(e.Line)
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

func malformed(what string, line []byte) error {
	if len(line) > 64 {
		line = line[:64]
	}
	return &MalformedError{What: what, Line: string(line)}
}
