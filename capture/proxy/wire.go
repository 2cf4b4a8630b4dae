package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/reprise-tool/reprise/session"
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
		blank := isBlank(buf[n:])
		if blank && started {
			return buf, nil
		}
		if !blank {
			started = true
		}
	}
}

func isBlank(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// head is a parsed start line and its header fields.
type head struct {
	a, b, c string // the three parts of the start line
	fields  session.Headers
	warns   []string
}

// parseHead splits raw into the start line and fields, keeping names'
// case and the order of repeated fields; obsolete line folding is joined
// with a space.
func parseHead(raw []byte) (head, error) {
	var h head
	lines := strings.Split(string(raw), "\n")
	i := 0
	for i < len(lines) && strings.TrimRight(lines[i], "\r") == "" {
		i++
	}
	if i == len(lines) {
		return h, errors.New("no start line")
	}
	start := strings.TrimRight(lines[i], "\r")
	var ok bool
	h.a, start, ok = strings.Cut(start, " ")
	if !ok {
		return h, fmt.Errorf("malformed start line %q", clip(lines[i]))
	}
	h.b, h.c, _ = strings.Cut(start, " ")
	for _, l := range lines[i+1:] {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if n := len(h.fields); n > 0 {
				h.fields[n-1].Value += " " + strings.TrimSpace(l)
				h.warns = append(h.warns, "obsolete line folding in field "+h.fields[n-1].Name)
				continue
			}
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			h.warns = append(h.warns, fmt.Sprintf("malformed header line %q", clip(l)))
			continue
		}
		h.fields = append(h.fields, session.Header{Name: name, Value: strings.Trim(value, " \t")})
	}
	return h, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// framing is how a message body is delimited.
type framing int

const (
	noBody framing = iota
	lengthBody
	chunkedBody
	closeBody  // a response read until the upstream closes
	tunnelBody // after 101 or a successful CONNECT: raw bytes both ways
)

// bodyFraming applies RFC 9112 section 6.3 to a message's fields.
func bodyFraming(h session.Headers, isRequest bool) (framing, int64, error) {
	te := h.Values("Transfer-Encoding")
	if len(te) > 0 {
		last := strings.TrimSpace(te[len(te)-1])
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = strings.TrimSpace(last[i+1:])
		}
		if strings.EqualFold(last, "chunked") {
			return chunkedBody, 0, nil
		}
		if isRequest {
			return 0, 0, fmt.Errorf("request Transfer-Encoding %q does not end in chunked", strings.Join(te, ", "))
		}
		return closeBody, 0, nil
	}
	cl := h.Values("Content-Length")
	if len(cl) == 0 {
		if isRequest {
			return noBody, 0, nil
		}
		return closeBody, 0, nil
	}
	var n int64 = -1
	for _, v := range cl {
		for _, p := range strings.Split(v, ",") {
			m, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
			if err != nil || m < 0 || (n >= 0 && m != n) {
				return 0, 0, fmt.Errorf("invalid Content-Length %q", strings.Join(cl, ", "))
			}
			n = m
		}
	}
	if n == 0 {
		return noBody, 0, nil
	}
	return lengthBody, n, nil
}

// hasToken reports whether a comma-separated header (Connection, Upgrade)
// holds tok.
func hasToken(h session.Headers, name, tok string) bool {
	for _, v := range h.Values(name) {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), tok) {
				return true
			}
		}
	}
	return false
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
		size, err := chunkSize(line)
		if err != nil {
			return err
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
		if !isBlank(line) {
			return fmt.Errorf("chunk data not followed by CRLF")
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
		if isBlank(line) {
			return nil
		}
	}
}

func chunkSize(line []byte) (int64, error) {
	s := strings.TrimRight(string(line), "\r\n")
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimRight(s, " \t")
	n, err := strconv.ParseInt(s, 16, 64)
	if err != nil || n < 0 || s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("invalid chunk size line %q", clip(string(line)))
	}
	return n, nil
}
