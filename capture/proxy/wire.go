package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
)

// maxHead bounds a request or response head (start line and header
// fields). net/http's default is 1 MiB; a larger head is not parsed but
// relayed untouched.
const maxHead = 1 << 20

// errHeadTooLarge means a head exceeded maxHead.
var errHeadTooLarge = errors.New("http head larger than 1 MiB")

// flusher is what the relay needs from its destination: a buffered writer.
type flusher interface {
	Write([]byte) (int, error)
	Flush() error
}

// waitLine makes sure a whole line is buffered in r, flushing w first when
// the read would block, so bytes already relayed never wait for bytes not
// yet received.
func waitLine(r *bufio.Reader, w flusher) error {
	if n := r.Buffered(); n > 0 {
		b, _ := r.Peek(n)
		if bytes.IndexByte(b, '\n') >= 0 {
			return nil
		}
	}
	return w.Flush()
}

// waitData flushes w when r has nothing buffered, then blocks until r has
// at least one byte.
func waitData(r *bufio.Reader, w flusher) error {
	if r.Buffered() == 0 {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	_, err := r.Peek(1)
	return err
}

// readLine returns the next line with its line ending, appended to buf.
func readLine(r *bufio.Reader, w flusher, buf []byte, limit int) ([]byte, error) {
	if err := waitLine(r, w); err != nil {
		return buf, err
	}
	for {
		line, err := r.ReadSlice('\n')
		buf = append(buf, line...)
		if len(buf) > limit {
			return buf, errHeadTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return buf, err
	}
}

// readHead reads a start line and header fields up to the empty line,
// returning the raw bytes exactly as received (empty lines before the
// start line included, as RFC 9112 lets a recipient ignore them).
func readHead(r *bufio.Reader, w flusher, buf []byte) ([]byte, error) {
	started := false
	for {
		n := len(buf)
		var err error
		buf, err = readLine(r, w, buf, maxHead)
		if err != nil {
			return buf, err
		}
		blank := http1.IsBlank(buf[n:])
		if blank && started {
			return buf, nil
		}
		if !blank {
			started = true
		}
	}
}

// head is a parsed start line and its header fields.
type head struct {
	start  string
	fields session.Headers
	warns  []string
	f      http1.Framing
}

// parseHead splits raw into the start line and fields (http1.ParseHead),
// keeping names' case and the order of repeated fields; obsolete line
// folding is joined with a space. Empty lines before the start line are
// skipped.
func parseHead(raw []byte) (*head, error) {
	h := new(head)
	s := string(raw)
	for len(s) > 0 && (s[0] == '\r' || s[0] == '\n') {
		s = s[1:]
	}
	if s == "" {
		return h, errors.New("no start line")
	}
	h.start, h.fields = http1.ParseHead(s, &h.f, func(kind int, line string) {
		if kind == http1.FoldLine {
			h.warns = append(h.warns, "obsolete line folding in field "+line)
		} else {
			h.warns = append(h.warns, fmt.Sprintf("malformed header line %q", clip(line)))
		}
	})
	return h, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// body collects a relayed body up to a cap.
type body struct {
	b         []byte
	size      int64
	max       int64
	truncated bool
}

// expect sizes the buffer once for a body of known length, instead of
// growing it by appends.
func (b *body) expect(n int64) {
	if n = min(n, b.max); n > 0 && b.b == nil {
		b.b = make([]byte, 0, n)
	}
}

func (b *body) add(p []byte) {
	b.size += int64(len(p))
	if room := b.max - int64(len(b.b)); room > 0 {
		if int64(len(p)) > room {
			p = p[:room]
			b.truncated = true
		}
		b.b = append(b.b, p...)
	} else if len(p) > 0 {
		b.truncated = true
	}
}

// relayBody relays a body framed as b from r to w, recording it in rec.
func relayBody(r *bufio.Reader, w flusher, b http1.Body, rec *body) error {
	switch b.Kind {
	case http1.LengthBody:
		rec.expect(b.Length)
		return relayN(r, w, b.Length, rec)
	case http1.ChunkedBody:
		return relayChunked(r, w, rec)
	case http1.CloseBody:
		return relayUntilEOF(r, w, rec)
	}
	return nil
}

// relayN copies n bytes from r to w, recording them, flushing w whenever r
// would block so a streamed body reaches the other side as it arrives.
func relayN(r *bufio.Reader, w flusher, n int64, rec *body) error {
	for n > 0 {
		if err := waitData(r, w); err != nil {
			return err
		}
		k := r.Buffered()
		if int64(k) > n {
			k = int(n)
		}
		p, _ := r.Peek(k)
		if rec != nil {
			rec.add(p)
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		r.Discard(k)
		n -= int64(k)
	}
	return nil
}

// relayUntilEOF copies r to w until r ends, for bodies delimited by close.
func relayUntilEOF(r *bufio.Reader, w flusher, rec *body) error {
	for {
		if err := waitData(r, w); err != nil {
			if isEOF(err) {
				return nil
			}
			return err
		}
		k := r.Buffered()
		p, _ := r.Peek(k)
		rec.add(p)
		if _, err := w.Write(p); err != nil {
			return err
		}
		r.Discard(k)
	}
}

// relayChunked copies a chunked body with its framing, recording the
// de-chunked bytes; trailer fields are relayed, not recorded.
func relayChunked(r *bufio.Reader, w flusher, rec *body) error {
	var line []byte
	for {
		var err error
		line, err = readLine(r, w, line[:0], 4096)
		if err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		size, err := http1.ParseChunkSize(line)
		if err != nil {
			return fmt.Errorf("invalid chunk size line %q: %w", clip(string(line)), err)
		}
		if size == 0 {
			break
		}
		if err := relayN(r, w, size, rec); err != nil {
			return err
		}
		line, err = readLine(r, w, line[:0], 4096)
		if err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		if !http1.IsBlank(line) {
			return fmt.Errorf("chunk data not followed by CRLF: %w", http1.ErrBadChunk)
		}
	}
	for { // trailer section
		var err error
		line, err = readLine(r, w, line[:0], maxHead)
		if err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		if http1.IsBlank(line) {
			return nil
		}
	}
}
