package http1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// The framing decision for the hard cases, one answer for every caller.
func TestResponseBody(t *testing.T) {
	tests := []struct {
		name, method, head string
		status             int
		want               Body
		err                error
		flags              Flag
		persistent         bool
	}{
		// a plain length
		{"length", "GET", "Content-Length: 5", 200, Body{LengthBody, 5}, nil, 0, true},
		// the same length twice, as a list and as two fields
		{"dup list", "GET", "Content-Length: 5, 5", 200, Body{LengthBody, 5}, nil, FlagDupLength, true},
		{"dup fields", "GET", "Content-Length: 5\nContent-Length: 5", 200, Body{LengthBody, 5}, nil, FlagDupLength, true},
		// differing lengths, in a list or in fields, and bad numbers
		{"conflict list", "GET", "Content-Length: 5, 6", 200, Body{}, ErrBadLength, FlagDupLength, false},
		{"conflict fields", "GET", "Content-Length: 5\nContent-Length: 6", 200, Body{}, ErrBadLength, FlagDupLength, false},
		{"signed", "GET", "Content-Length: +5", 200, Body{}, ErrBadLength, 0, false},
		{"empty element", "GET", "Content-Length: 5,", 200, Body{}, ErrBadLength, FlagDupLength, false},
		{"past int64", "GET", "Content-Length: 99999999999999999999", 200, Body{}, ErrBadLength, 0, false},
		// Transfer-Encoding wins over Content-Length, flagged
		{"cl+te", "GET", "Content-Length: 5\nTransfer-Encoding: chunked", 200, Body{Kind: ChunkedBody}, nil, FlagLengthAndEncoding, true},
		{"te list", "GET", "Transfer-Encoding: gzip, chunked", 200, Body{Kind: ChunkedBody}, nil, 0, true},
		{"te other", "GET", "Transfer-Encoding: gzip", 200, Body{Kind: CloseBody}, nil, FlagOtherCoding, false},
		{"te in 1.0", "GET", "HTTP/1.0\nTransfer-Encoding: chunked", 200, Body{Kind: CloseBody}, nil, FlagEncoding10, false},
		// no body whatever the fields say
		{"1xx", "GET", "Content-Length: 5", 100, Body{}, nil, 0, true},
		{"101", "GET", "Content-Length: 5", 101, Body{}, nil, 0, true},
		{"head", "HEAD", "Content-Length: 5", 200, Body{}, nil, 0, true},
		{"204", "GET", "Transfer-Encoding: chunked", 204, Body{}, nil, 0, true},
		{"304", "GET", "Content-Length: 5", 304, Body{}, nil, 0, true},
		// neither: to the close
		{"close delimited", "GET", "X: y", 200, Body{Kind: CloseBody}, nil, 0, false},
		{"zero", "GET", "Content-Length: 0", 200, Body{}, nil, 0, true},
		// connection tokens
		{"close token", "GET", "Connection: Upgrade, close\nContent-Length: 0", 200, Body{}, nil, 0, false},
		{"1.0 keep-alive", "GET", "HTTP/1.0\nConnection: keep-alive\nContent-Length: 1", 200, Body{LengthBody, 1}, nil, 0, true},
		{"1.0", "GET", "HTTP/1.0\nContent-Length: 1", 200, Body{LengthBody, 1}, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Framing
			for _, line := range strings.Split(tt.head, "\n") {
				if line == "HTTP/1.0" {
					continue
				}
				name, value, kind := SplitField(line)
				if kind != FieldLine {
					t.Fatalf("%q: kind %d", line, kind)
				}
				f.AddString(name, value)
			}
			f.HTTP10 = strings.HasPrefix(tt.head, "HTTP/1.0")
			b, err := f.ResponseBody(tt.method, tt.status)
			if b != tt.want || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) || f.Flags != tt.flags {
				t.Errorf("got %+v %v flags %b, want %+v %v flags %b", b, err, f.Flags, tt.want, tt.err, tt.flags)
			}
			if err == nil && f.Persistent(b) != tt.persistent {
				t.Errorf("persistent %v", !tt.persistent)
			}
		})
	}
}

// Requests: chunked or counted, or no body; any other coding is an error.
func TestRequestBody(t *testing.T) {
	tests := []struct {
		name, head string
		want       Body
		err        error
	}{
		{"none", "Host: a", Body{}, nil},                                                                  // no framing: no body
		{"length", "Content-Length: 3", Body{LengthBody, 3}, nil},                                         // counted
		{"dup", "Content-Length: 3, 3", Body{LengthBody, 3}, nil},                                         // the same value twice
		{"conflict", "Content-Length: 3, 4", Body{}, ErrBadLength},                                        // differing
		{"chunked", "Transfer-Encoding: chunked\nContent-Length: 3", Body{Kind: ChunkedBody}, nil},        // TE wins
		{"other", "Transfer-Encoding: gzip", Body{}, ErrBadEncoding},                                      // not chunked last
		{"split TE", "Transfer-Encoding: gzip\nTransfer-Encoding: chunked", Body{Kind: ChunkedBody}, nil}, // a list over two fields
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Framing
			for _, line := range strings.Split(tt.head, "\n") {
				name, value, _ := SplitField([]byte(line))
				f.Add(name, value)
			}
			b, err := f.RequestBody()
			if b != tt.want || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Errorf("got %+v %v, want %+v %v", b, err, tt.want, tt.err)
			}
		})
	}
}

// Start lines, field lines and chunk sizes.
func TestLines(t *testing.T) {
	if m, tg, p, ok := ParseRequestLine("GET /a?b HTTP/1.1"); !ok || m != "GET" || tg != "/a?b" || p != "HTTP/1.1" {
		t.Errorf("request line: %q %q %q %v", m, tg, p, ok)
	}
	for _, l := range []string{"GET /a b HTTP/1.1", "G@T / HTTP/1.1", "GET / HTTP/2.0", "GET  HTTP/1.1", " GET / HTTP/1.1"} {
		if _, _, _, ok := ParseRequestLine(l); ok {
			t.Errorf("%q taken as a request line", l)
		}
	}
	if p, s, r, ok := ParseStatusLine([]byte("HTTP/1.0 404 Not Found")); !ok || string(p) != "HTTP/1.0" || s != 404 || string(r) != "Not Found" {
		t.Errorf("status line: %q %d %q %v", p, s, r, ok)
	}
	for _, l := range []string{"HTTP/1.1 20 OK", "HTTP/1.1 099", "HTTP/1.1 200OK", "HTTP/2 200 OK", "SSH-2.0-OpenSSH"} {
		if _, _, _, ok := ParseStatusLine(l); ok {
			t.Errorf("%q taken as a status line", l)
		}
	}
	fields := []struct {
		line, name, value string
		kind              int
	}{
		{"A: b ", "A", "b", FieldLine},
		{"A:b", "A", "b", FieldLine},
		{"  more\t", "", "more", FoldLine},
		{"A B: c", "A B", "c", BadName},
		{": c", "", "", BadLine},
		{"broken", "", "", BadLine},
	}
	for _, f := range fields {
		if n, v, k := SplitField(f.line); n != f.name || v != f.value || k != f.kind {
			t.Errorf("%q: %q %q %d", f.line, n, v, k)
		}
	}
	sizes := map[string]int64{"0": 0, "1a;ext=1": 26, "A \t;x": 10, "ff\r\n": 255, "7fffffffffffffff": 1<<63 - 1}
	for l, want := range sizes {
		if n, err := ParseChunkSize(l); err != nil || n != want {
			t.Errorf("chunk size %q: %d %v", l, n, err)
		}
	}
	for _, l := range []string{"", ";x", " 1", "-1", "+1", "0x1", "g", "10000000000000000"} {
		if _, err := ParseChunkSize(l); err == nil {
			t.Errorf("chunk size %q accepted", l)
		}
	}
}

// The chunked reader returns the data, reports sizes and trailer lines,
// and accepts bare LF line ends.
func TestChunkedReader(t *testing.T) {
	in := "5;a=b\r\nhello\r\n6\n world\n0\r\nX-Sum: 1\r\n\r\nNEXT"
	r := bufio.NewReader(strings.NewReader(in))
	var sizes []int64
	var trailer []string
	c := &ChunkedReader{OnChunk: func(n int64) { sizes = append(sizes, n) }, OnTrailer: func(l []byte) { trailer = append(trailer, string(l)) }}
	c.Reset(r)
	b, err := io.ReadAll(c)
	rest, _ := io.ReadAll(r)
	if err != nil || string(b) != "hello world" || len(sizes) != 3 || sizes[1] != 6 || len(trailer) != 1 || string(rest) != "NEXT" {
		t.Errorf("%q %v sizes %v trailer %q rest %q", b, err, sizes, trailer, rest)
	}
	for _, bad := range []string{"5\r\nhelloX\r\n0\r\n\r\n", "5\r\nhel", "z\r\n", "0\r\nX: 1\r\n"} {
		if _, err := io.ReadAll(NewChunkedReader(bufio.NewReader(strings.NewReader(bad)))); err == nil {
			t.Errorf("%q read whole", bad)
		}
	}
}

// ParseHead joins folded lines, skips bad ones and reports both.
func TestParseHead(t *testing.T) {
	var f Framing
	var bad []string
	start, hdr := ParseHead("GET / HTTP/1.1\nA: 1\r\n  2\r\nB C: 3\r\nnocolon\r\nContent-Length: 4, 4\n\r\n", &f,
		func(kind int, line string) { bad = append(bad, line) })
	b, err := f.RequestBody()
	if start != "GET / HTTP/1.1" || len(hdr) != 2 || hdr[0].Value != "1 2" || len(bad) != 3 || err != nil || b.Length != 4 ||
		f.Flags != FlagObsFold|FlagDupLength {
		t.Errorf("%q %v bad %q body %+v %v flags %b", start, hdr, bad, b, err, f.Flags)
	}
}

// Hop-by-hop fields in any case, and those a Connection field names.
func TestHopByHop(t *testing.T) {
	for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"TE", "Trailer", "Transfer-Encoding", "Upgrade", "Expect"} {
		for _, n := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if !IsHopByHop(n) {
				t.Errorf("%q is hop-by-hop", n)
			}
		}
	}
	for _, n := range []string{"", "T", "Host", "Content-Length", "User-Agent", "X-Connection", "Proxy-Authorizations"} {
		if IsHopByHop(n) {
			t.Errorf("%q is not hop-by-hop", n)
		}
	}
	hdr := sessionHeaders("Connection", "close, X-Trace", "X-Trace", "1")
	if !HopByHop(hdr, "x-trace") || HopByHop(hdr, "X-Other") || !HasConnection(hdr) {
		t.Error("a name listed in Connection is hop-by-hop")
	}
}
