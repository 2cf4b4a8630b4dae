package http1

import "errors"

// text is what the parsers accept: bytes in a reader's buffer, or a string
// that the parsed parts may share.
type text interface{ ~string | ~[]byte }

// Errors of the framing rules. Callers wrap them with what they were
// reading; test them with errors.Is.
var (
	// ErrBadLength means a Content-Length is not a decimal number, or the
	// values of a message's Content-Length fields differ: the message's
	// end cannot be found.
	ErrBadLength = errors.New("http1: invalid or conflicting Content-Length")
	// ErrBadEncoding means a request's Transfer-Encoding does not end in
	// chunked (or came in HTTP/1.0): its end cannot be found.
	ErrBadEncoding = errors.New("http1: request Transfer-Encoding does not end in chunked")
	// ErrBadChunk means a chunk-size line, or the line ending after chunk
	// data, is malformed.
	ErrBadChunk = errors.New("http1: malformed chunked encoding")
	// ErrLineTooLong means a line did not fit in the reader's buffer.
	ErrLineTooLong = errors.New("http1: line too long")
)

// TrimEOL removes a line's LF and the CR before it, if any: a bare LF ends
// a line as CRLF does.
func TrimEOL[S text](line S) S {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
	}
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return line[:n]
}

// IsBlank reports whether line, with or without its line ending, is empty:
// the end of a head or of a trailer section.
func IsBlank[S text](line S) bool { return len(TrimEOL(line)) == 0 }

// IsTchar reports whether c may appear in a token (RFC 9110 section 5.6.2).
func IsTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// IsToken reports whether s is a non-empty token: a method or field name.
func IsToken[S text](s S) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsTchar(s[i]) {
			return false
		}
	}
	return true
}

// validProto reports whether p is HTTP/1.x.
func validProto[S text](p S) bool {
	return len(p) == 8 && string(p[:7]) == "HTTP/1." && p[7] >= '0' && p[7] <= '9'
}

// ParseRequestLine splits a request line (without its line ending) into
// "method SP request-target SP HTTP/1.x". The method is a token of at most
// 32 bytes and the target holds no space or control byte.
func ParseRequestLine[S text](line S) (method, target, proto S, ok bool) {
	sp1 := indexByte(line, ' ')
	if sp1 <= 0 || sp1 > 32 {
		return method, target, proto, false
	}
	rest := line[sp1+1:]
	sp2 := lastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return method, target, proto, false
	}
	method, target, proto = line[:sp1], rest[:sp2], rest[sp2+1:]
	if !IsToken(method) || !validProto(proto) {
		return method, target, proto, false
	}
	for i := 0; i < len(target); i++ {
		if target[i] <= ' ' || target[i] == 0x7f {
			return method, target, proto, false
		}
	}
	return method, target, proto, true
}

// ParseStatusLine splits a status line (without its line ending) into
// "HTTP/1.x SP 3DIGIT [SP reason]"; the status is at least 100.
func ParseStatusLine[S text](line S) (proto S, status int, reason S, ok bool) {
	if len(line) < 12 || line[8] != ' ' || !validProto(line[:8]) {
		return proto, 0, reason, false
	}
	for i := 9; i < 12; i++ {
		d := line[i]
		if d < '0' || d > '9' {
			return proto, 0, reason, false
		}
		status = status*10 + int(d-'0')
	}
	if status < 100 {
		return proto, 0, reason, false
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return proto, 0, reason, false
		}
		reason = line[13:]
	}
	return line[:8], status, reason, true
}

// Line kinds returned by SplitField.
const (
	FieldLine = iota // name: value
	FoldLine         // obsolete line folding: value continues the previous field
	BadName          // name: value, but the name is not a token (a space in it)
	BadLine          // no colon, or nothing before it
)

// SplitField splits a header field line (without its line ending) into
// its name and its value less surrounding whitespace. A line that starts
// with a space or tab is obsolete folding (FoldLine), its value the
// continuation, to be joined to the previous field's with one space. A
// name that is not a token is BadName: a recorder keeps or warns, a server
// rejects (RFC 9112 section 5.1), the replay client lets it through as
// net/http does in responses.
func SplitField[S text](line S) (name, value S, kind int) {
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		return name, trimOWS(line), FoldLine
	}
	colon := indexByte(line, ':')
	if colon <= 0 {
		return name, value, BadLine
	}
	name, value = line[:colon], trimOWS(line[colon+1:])
	if !IsToken(name) {
		return name, value, BadName
	}
	return name, value, FieldLine
}

// trimOWS trims spaces and tabs at both ends.
func trimOWS[S text](s S) S {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}

func indexByte[S text](s S, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func lastIndexByte[S text](s S, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// EqualFold reports whether a and b are equal in ASCII letter case, the
// way field names and tokens compare.
func EqualFold[A, B text](a A, b B) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HasToken reports whether a comma-separated list value (Connection,
// Upgrade, Transfer-Encoding) holds tok in any case.
func HasToken[S text](list S, tok string) bool {
	for more := len(list) > 0; more; {
		var el S
		el, list, more = cutList(list)
		if EqualFold(el, tok) {
			return true
		}
	}
	return false
}

// cutList cuts the first element off a comma-separated list, less its
// surrounding whitespace; more reports whether a comma followed it.
func cutList[S text](list S) (el, rest S, more bool) {
	if i := indexByte(list, ','); i >= 0 {
		return trimOWS(list[:i]), list[i+1:], true
	}
	return trimOWS(list), list[:0], false
}
