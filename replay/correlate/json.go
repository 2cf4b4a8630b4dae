package correlate

import (
	"encoding/json"
	"unicode/utf8"
)

// rewriteJSON substitutes string and number leaves (never object keys) of
// a valid JSON document, editing the text in place so that everything
// else (key order, spacing, escapes of untouched strings) stays as
// recorded. A recorded string may become a live number and the other way
// round: a string stays a string; a number stays a number when the live
// value is numeric, else it becomes a string.
//
// sub receives the name of the member whose value it is ("" inside arrays
// at the top) and returns the new value and whether to replace it.
func rewriteJSON(doc []byte, sub func(key, v string) (string, bool)) []byte {
	var out []byte // nil until the first change
	last := 0
	key := ""
	emit := func(start, end int, repl []byte) {
		if out == nil {
			out = make([]byte, 0, len(doc)+64)
		}
		out = append(out, doc[last:start]...)
		out = append(out, repl...)
		last = end
	}
	for i := 0; i < len(doc); {
		c := doc[i]
		switch {
		case c == '"':
			end := scanString(doc, i)
			if end < 0 {
				return doc
			}
			if isKey(doc, end) {
				key, _ = jsonString(doc[i:end])
				i = end
				continue
			}
			if s, ok := jsonString(doc[i:end]); ok {
				if nv, ok := sub(key, s); ok && nv != s {
					emit(i, end, literal(nv, false))
				}
			}
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			end := i + 1
			for end < len(doc) && isNumByte(doc[end]) {
				end++
			}
			s := string(doc[i:end])
			if nv, ok := sub(key, s); ok && nv != s {
				emit(i, end, literal(nv, isNumber(nv)))
			}
			i = end
		default:
			i++
		}
	}
	if out == nil {
		return doc
	}
	return append(out, doc[last:]...)
}

// jsonString decodes a string literal, quotes included, as
// json.Unmarshal does. One without an escape, a control character or
// invalid UTF-8 is its own content, which spares encoding/json's decoder
// and its allocations, a tenth of a rewritten request's cost.
func jsonString(lit []byte) (string, bool) {
	in := lit[1 : len(lit)-1]
	plain := utf8.Valid(in)
	for _, c := range in {
		if c == '\\' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return string(in), true
	}
	var s string
	err := json.Unmarshal(lit, &s)
	return s, err == nil
}

func literal(v string, number bool) []byte {
	if number {
		return []byte(v)
	}
	b, _ := json.Marshal(v)
	return b
}

// scanString returns the index just past the string literal starting at
// doc[i] == '"', or -1 when it is not closed.
func scanString(doc []byte, i int) int {
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// isKey reports whether the string literal ending at end is an object key.
func isKey(doc []byte, end int) bool {
	for ; end < len(doc); end++ {
		switch doc[end] {
		case ' ', '\t', '\n', '\r':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

func isNumByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

func jsonValid(b []byte) bool { return json.Valid(b) }
