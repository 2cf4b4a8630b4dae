package corrplan

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// jsonLeaves reads the JSON value at the start of doc (what a
// json.Decoder's Decode reads: leading space allowed, anything after the
// value ignored) and sets its string and number leaves in out by path
// from prefix, as walkJSON over the decoded value did. It reports false
// for text that is not JSON; out may then hold some of its leaves.
//
// It reads the text in place: a leaf costs its path and its value, where
// decoding into maps and interfaces first cost an allocation per member
// and a map per object, most of a plan's survey over a recording of JSON
// catalogues.
func jsonLeaves(doc []byte, prefix string, out *fieldSet) bool {
	s := leafScanner{doc: doc, sink: setLeaves{out}, path: append(make([]byte, 0, 64), prefix...)}
	return s.value()
}

// leafSink is handed each string and number leaf a leafScanner reads, in
// the document's order: its path, and raw, a number's text or a string's
// literal (its value when plain, else with its quotes; see unquote). It
// returns false to stop the reading, which then reports false.
type leafSink interface {
	leaf(path, raw []byte, plain, number bool) bool
}

// setLeaves sets leaves in a fieldSet, as Fields reads them.
type setLeaves struct{ out *fieldSet }

func (k setLeaves) leaf(path, raw []byte, plain, number bool) bool {
	if number {
		k.out.set(string(path), Field{Value: string(raw), Number: true})
		return true
	}
	v, ok := unquote(raw, plain)
	if ok {
		k.out.set(string(path), Field{Value: v})
	}
	return ok
}

// keyRule is what a leafScanner asks of object keys, for a reader that
// takes each leaf as it comes rather than a map of them by path. A
// document breaking it is read no further (irregular is set): its reader
// reads it the general way. A repeated key (encoding/json keeps the last
// member) makes two leaves of one path; so does a key holding '.' or
// '[' ({"a.b":1,"a":{"b":2}}); an escaped key is told apart from another
// only once unquoted.
type keyRule uint8

const (
	anyKeys      keyRule = iota
	distinctKeys         // plain keys, none repeated in its object
	pathSafeKeys         // distinctKeys, none holding '.' or '['
)

type leafScanner struct {
	doc   []byte
	i     int
	path  []byte
	sink  leafSink
	depth int
	// stars writes array elements as [*], not [index]: the path a
	// request's value is carried at, and (with pathSafeKeys) the
	// response's field as Generalize writes it.
	stars     bool
	keys      keyRule
	irregular bool
	seen      [][]byte // with keys > anyKeys: the keys of the objects open
}

func (s *leafScanner) space() {
	for s.i < len(s.doc) {
		switch s.doc[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// at reports whether the next byte, after space, is c.
func (s *leafScanner) at(c byte) bool {
	s.space()
	return s.i < len(s.doc) && s.doc[s.i] == c
}

func (s *leafScanner) value() bool {
	s.space()
	if s.i >= len(s.doc) {
		return false
	}
	switch c := s.doc[s.i]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		raw, plain, ok := s.str()
		return ok && s.sink.leaf(s.path, raw, plain, false)
	case c == '-' || '0' <= c && c <= '9':
		start := s.i
		return s.number() && s.sink.leaf(s.path, s.doc[start:s.i], true, true)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *leafScanner) object() bool {
	base := len(s.seen)
	ok := s.members('}', func(_, n int) bool {
		if !s.at('"') {
			return false
		}
		raw, plain, ok := s.str()
		if !ok || !s.at(':') {
			return false
		}
		s.i++
		if s.keys > anyKeys {
			if !plain || s.keys == pathSafeKeys && bytes.ContainsAny(raw, ".[") {
				s.irregular = true
				return false
			}
			s.seen = append(s.seen, raw)
		}
		s.path = append(s.path[:n], '.')
		if plain {
			s.path = append(s.path, raw...)
		} else {
			k, ok := unquote(raw, false)
			if !ok {
				return false
			}
			s.path = append(s.path, k...)
		}
		return s.value()
	})
	if ok && s.keys > anyKeys && repeats(s.seen[base:]) {
		s.irregular, ok = true, false
	}
	s.seen = s.seen[:base]
	return ok
}

// repeats reports whether keys holds one key twice; it may sort keys.
func repeats(keys [][]byte) bool {
	if len(keys) <= 16 {
		for i, k := range keys {
			for _, l := range keys[:i] {
				if bytes.Equal(k, l) {
					return true
				}
			}
		}
		return false
	}
	slices.SortFunc(keys, bytes.Compare)
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(keys[i-1], keys[i]) {
			return true
		}
	}
	return false
}

func (s *leafScanner) array() bool {
	return s.members(']', func(k, n int) bool {
		if s.stars {
			s.path = append(s.path[:n], "[*]"...)
		} else {
			s.path = append(strconv.AppendInt(append(s.path[:n], '['), int64(k), 10), ']')
		}
		return s.value()
	})
}

// members reads an object's members or an array's elements, from its
// opening byte at s.i to its closing one: member reads the k-th, given
// the length of the container's own path.
func (s *leafScanner) members(closing byte, member func(k, n int) bool) bool {
	if s.depth++; s.depth > maxJSONDepth {
		return false
	}
	s.i++
	n := len(s.path)
	if s.at(closing) {
		s.i++
		s.depth--
		return true
	}
	for k := 0; ; k++ {
		if !member(k, n) {
			return false
		}
		s.path = s.path[:n]
		if !s.at(',') {
			if s.i < len(s.doc) && s.doc[s.i] == closing {
				s.i++
				s.depth--
				return true
			}
			return false
		}
		s.i++
	}
}

// str reads the string literal at s.i: raw is it with its quotes, plain
// that it has no escape and is valid UTF-8 (its bytes between the quotes
// are its value).
func (s *leafScanner) str() (raw []byte, plain, ok bool) {
	start := s.i
	plain = true
	for j := start + 1; j < len(s.doc); j++ {
		switch c := s.doc[j]; {
		case c == '"':
			s.i = j + 1
			raw = s.doc[start:s.i]
			if plain && !utf8.Valid(raw) {
				plain = false
			}
			if plain {
				raw = raw[1 : len(raw)-1]
			}
			return raw, plain, true
		case c == '\\':
			plain = false
			j++
		case c < 0x20:
			return nil, false, false
		}
	}
	return nil, false, false
}

// unquote is a string's value: its bytes when plain, else encoding/json's
// reading of the quoted literal (escapes, invalid UTF-8 replaced).
func unquote(raw []byte, plain bool) (string, bool) {
	if plain {
		return string(raw), true
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

// number reads a number as JSON's grammar has it.
func (s *leafScanner) number() bool {
	d := s.doc
	i := s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		i = digits(d, i)
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		if j := digits(d, i+1); j > i+1 {
			i = j
		} else {
			return false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return false
		}
		i = j
	}
	s.i = i
	return true
}

func digits(d []byte, i int) int {
	for i < len(d) && '0' <= d[i] && d[i] <= '9' {
		i++
	}
	return i
}

func (s *leafScanner) literal(lit string) bool {
	if len(s.doc)-s.i < len(lit) || string(s.doc[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}
