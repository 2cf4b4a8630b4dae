package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzFraming feeds arbitrary bytes as a response. The in-place reader
// (the replay client's) and the in-memory parser (the recorders') must
// agree on the framing of any head the reader takes, and reading the body
// must never return more bytes than the input held, nor panic.
func FuzzFraming(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), "GET")
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"), "GET")
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), "GET")
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nT: 1\r\n\r\n"), "GET")
	f.Add([]byte("HTTP/1.1 200 OK\nX: a\n b\n\nrest"), "GET")
	f.Add([]byte("HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n"), "GET")
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"), "HEAD")
	f.Add([]byte("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nuntil close"), "GET")
	f.Fuzz(func(t *testing.T, in []byte, method string) {
		r := bufio.NewReaderSize(bytes.NewReader(in), 256)
		var h HeadReader
		var s StatusHead
		if err := h.ReadResponse(r, &s); err != nil {
			return
		}
		body, berr := s.ResponseBody(method, s.Status)

		end := bytes.Index(in, []byte("\n\r\n"))
		if e := bytes.Index(in, []byte("\n\n")); e >= 0 && (end < 0 || e < end) {
			end = e - 1
		}
		if end < 0 {
			t.Fatalf("a head read from %q without its end", in)
		}
		var g Framing
		start, hdr := ParseHead(string(in[:end+3]), &g, nil)
		g.HTTP10 = strings.HasPrefix(start, "HTTP/1.0")
		gbody, gerr := g.ResponseBody(method, s.Status)
		if gbody != body || !errors.Is(gerr, berr) || g.Flags != s.Flags || g.Persistent(gbody) != s.Persistent(body) {
			t.Fatalf("in place %+v %v %b; in memory %+v %v %b; from %q", body, berr, s.Flags, gbody, gerr, g.Flags, in)
		}
		if got := h.Headers(); len(got) < len(hdr) {
			t.Fatalf("in place %d fields, in memory %d", len(got), len(hdr))
		}
		if berr != nil {
			return
		}
		var n int64
		switch body.Kind {
		case LengthBody:
			n, _ = io.Copy(io.Discard, io.LimitReader(r, body.Length))
		case ChunkedBody:
			n, _ = io.Copy(io.Discard, NewChunkedReader(r))
		case CloseBody:
			n, _ = io.Copy(io.Discard, r)
		}
		if n > int64(len(in)) {
			t.Fatalf("%d body bytes from %d", n, len(in))
		}
	})
}
