package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// This file holds the JSON path of the redactor: a single-pass scanner
// that finds members at any depth and rewrites only the bytes of the
// matched values (precheck.go tells first whether a body can hold a named
// member at all). Redaction runs on every JSON body of a capture, and encoding/json's tokenizer (about 13 MB per
// CPU second) made it ten times slower than the rest of the import.
//
// The scanner follows encoding/json.Decoder.Token exactly, so its output
// is byte for byte what the tokenizer-based implementation gave, valid or
// not (FuzzJSONReference checks this): it accepts a stream of top-level
// values, stops at the first syntax error keeping the values redacted
// before it, ends a number at the first byte that cannot continue it (at
// the end of input too), and refuses a matched value nested deeper than
// the decoder's limit.

// maxNesting is encoding/json's nesting limit for one decoded value.
const maxNesting = 10000

// Non-ASCII runes that strings.ToLower maps to ASCII letters: a key
// holding them can equal an ASCII name once lower-cased.
var (
	dottedCapitalI = []byte("\u0130") // İ lower-cases to "i"
	kelvinSign     = []byte("\u212a") // K lower-cases to "k"
)

// jsonSyntaxError is where the scanner met a byte that cannot continue
// the document; the values redacted before it stay redacted.
type jsonSyntaxError struct {
	Offset int
	Msg    string
}

func (e *jsonSyntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.Msg, e.Offset) }

var errJSONEnd = errors.New("unexpected end of JSON input")

// redactJSON hashes the values of named members at any depth, rewriting
// only the bytes of those values: whitespace, member order and number
// formatting elsewhere stay as sent. A string value is hashed as its
// decoded text (so it matches the same token elsewhere); any other value
// except null (a number, an object) is hashed as its raw text and becomes a
// string, which keeps the document valid. On a syntax error (a truncated
// body) the values found before it are still redacted and the error is
// returned.
func (r *Redactor) redactJSON(body []byte, hit func(string)) ([]byte, bool, error) {
	return r.redactJSONNames(body, &r.jsonNames, hit)
}

// redactJSONNames is redactJSON with the members to hash named by names.
func (r *Redactor) redactJSONNames(body []byte, names *jsonNames, hit func(string)) ([]byte, bool, error) {
	var out []byte
	last := 0
	err := scanJSON(body, names, func(start, end int, key string) {
		repl, ok := r.jsonValue(body[start:end])
		if !ok {
			return
		}
		if out == nil {
			out = make([]byte, 0, len(body)+24)
		}
		out = append(out, body[last:start]...)
		out = append(out, repl...)
		last = end
		hit("json:" + key)
	})
	if err != nil {
		err = errors.Join(errNotJSON, err)
	}
	if out == nil {
		return body, false, err
	}
	return append(out, body[last:]...), true, err
}

// scanJSON calls match with the byte range of each value whose member
// name is one of names, in order, and returns the first syntax error.
// Container kinds are kept in a bit stack, so depth costs no allocation
// below 64 levels.
func scanJSON(b []byte, names *jsonNames, match func(start, end int, key string)) error {
	const (
		stValue     = iota // a value must come (top level, after ':' or ',' in an array)
		stAfter            // a value ended
		stKey              // a member name must come (after ',' in an object)
		stFirstKey         // after '{': a name or '}'
		stFirstElem        // after '[': a value or ']'
	)
	var small [64]bool
	stack := small[:0] // true: object
	state := stValue
	i := 0
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			if len(stack) == 0 {
				return nil
			}
			return errJSONEnd
		}
		c := b[i]
		switch state {
		case stAfter:
			if len(stack) == 0 {
				state = stValue
				continue
			}
			obj := stack[len(stack)-1]
			switch {
			case c == ',' && obj:
				state = stKey
			case c == ',':
				state = stValue
			case c == '}' && obj, c == ']' && !obj:
				stack = stack[:len(stack)-1]
			default:
				return &jsonSyntaxError{i, fmt.Sprintf("invalid character %q after a value", c)}
			}
			i++
			continue
		case stFirstElem:
			if c == ']' {
				stack = stack[:len(stack)-1]
				state = stAfter
				i++
				continue
			}
		case stKey, stFirstKey:
			if c == '}' && state == stFirstKey {
				stack = stack[:len(stack)-1]
				state = stAfter
				i++
				continue
			}
			if c != '"' {
				return &jsonSyntaxError{i, fmt.Sprintf("invalid character %q looking for a member name", c)}
			}
			end, esc, err := scanString(b, i)
			if err != nil {
				return err
			}
			key, ok := names.key(b[i+1:end-1], esc)
			i = skipSpace(b, end)
			if i >= len(b) {
				return errJSONEnd
			}
			if b[i] != ':' {
				return &jsonSyntaxError{i, fmt.Sprintf("invalid character %q after a member name", b[i])}
			}
			i = skipSpace(b, i+1)
			if !ok {
				state = stValue
				continue
			}
			vend, err := skipValue(b, i)
			if err != nil {
				return err
			}
			match(i, vend, key)
			i = vend
			state = stAfter
			continue
		}
		// A value starts at i.
		switch {
		case c == '{':
			stack = append(stack, true)
			state = stFirstKey
			i++
		case c == '[':
			stack = append(stack, false)
			state = stFirstElem
			i++
		default:
			end, err := scanScalar(b, i)
			if err != nil {
				return err
			}
			i = end
			state = stAfter
		}
	}
}

// key returns the lower-cased member name raw (the bytes between the
// quotes) stands for, and whether it is one of n, as strings.ToLower of
// the decoded name would tell. Plain ASCII names are folded in place
// without allocating.
func (n *jsonNames) key(raw []byte, escaped bool) (string, bool) {
	ascii := true
	if !escaped {
		for _, c := range raw {
			if c >= 0x80 {
				ascii = false
				break
			}
		}
	}
	if !escaped && ascii {
		if len(raw) > n.maxLen {
			return "", false
		}
		var buf [64]byte
		low := buf[:0]
		if len(raw) > len(buf) {
			low = make([]byte, 0, len(raw))
		}
		for _, c := range raw {
			low = append(low, lowerASCII(c))
		}
		if n.set[string(low)] {
			return string(low), true
		}
		return "", false
	}
	if !escaped && !n.nonASCII && (!n.fold || !bytes.Contains(raw, dottedCapitalI) && !bytes.Contains(raw, kelvinSign)) {
		// Every other non-ASCII rune lower-cases to non-ASCII bytes
		// (invalid bytes decode to U+FFFD): no ASCII name can match.
		return "", false
	}
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return "", false
	}
	s = strings.ToLower(s)
	return s, n.set[s]
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// stringSafe marks the bytes that continue a string without a check.
var stringSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString returns the offset just past the string starting at b[i]
// (a quote), and whether it holds escapes. Bytes of any value from 0x20
// up are accepted, as encoding/json accepts invalid UTF-8.
func scanString(b []byte, i int) (int, bool, error) {
	esc := false
	j := i + 1
	for {
		for j < len(b) && stringSafe[b[j]] {
			j++
		}
		if j >= len(b) {
			return 0, false, errJSONEnd
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, esc, nil
		case c == '\\':
			esc = true
			if j+1 >= len(b) {
				return 0, false, errJSONEnd
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				for k := j + 2; k < j+6; k++ {
					if k >= len(b) {
						return 0, false, errJSONEnd
					}
					if !isHex(b[k]) {
						return 0, false, &jsonSyntaxError{k, "invalid character in \\u escape"}
					}
				}
				j += 6
			default:
				return 0, false, &jsonSyntaxError{j + 1, "invalid escape in string"}
			}
		default:
			return 0, false, &jsonSyntaxError{j, "control character in string"}
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanScalar returns the offset just past the string, number or literal
// starting at b[i]. A number ends at the first byte that cannot continue
// it, the end of input included, as encoding/json's decoder has it.
func scanScalar(b []byte, i int) (int, error) {
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '-' || isDigit(c):
		return scanNumber(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	default:
		return 0, &jsonSyntaxError{i, fmt.Sprintf("invalid character %q looking for a value", c)}
	}
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return 0, errJSONEnd
		}
		if b[i+k] != lit[k] {
			return 0, &jsonSyntaxError{i + k, "invalid literal"}
		}
	}
	return i + len(lit), nil
}

func scanNumber(b []byte, i int) (int, error) {
	need := func(j int) error { // a digit must be at j
		if j >= len(b) {
			return errJSONEnd
		}
		if !isDigit(b[j]) {
			return &jsonSyntaxError{j, "invalid character in number"}
		}
		return nil
	}
	j := i
	if b[j] == '-' {
		j++
	}
	if err := need(j); err != nil {
		return 0, err
	}
	if b[j] == '0' {
		j++
	} else {
		for j < len(b) && isDigit(b[j]) {
			j++
		}
	}
	if j < len(b) && b[j] == '.' {
		j++
		if err := need(j); err != nil {
			return 0, err
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if err := need(j); err != nil {
			return 0, err
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
	}
	return j, nil
}

// skipValue returns the offset just past the whole value starting at
// b[i], checking its syntax and nesting like a decoder would.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errJSONEnd
	}
	if c := b[i]; c != '{' && c != '[' {
		return scanScalar(b, i)
	}
	var small [64]bool
	stack := small[:0]
	for {
		// A value starts at i.
		c := b[i]
		switch c {
		case '{', '[':
			if len(stack) >= maxNesting {
				return 0, &jsonSyntaxError{i, "value nested too deeply"}
			}
			stack = append(stack, c == '{')
			i = skipSpace(b, i+1)
			if i >= len(b) {
				return 0, errJSONEnd
			}
			if b[i] == '}' && c == '{' || b[i] == ']' && c == '[' {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				var err error
				if i, err = skipMemberName(b, i); err != nil {
					return 0, err
				}
			}
			continue
		default:
			end, err := scanScalar(b, i)
			if err != nil {
				return 0, err
			}
			i = end
		}
		// A value ended at i: close containers or move to the next value.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, errJSONEnd
			}
			obj := stack[len(stack)-1]
			if c := b[i]; c == '}' && obj || c == ']' && !obj {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return 0, &jsonSyntaxError{i, fmt.Sprintf("invalid character %q after a value", b[i])}
			}
			i = skipSpace(b, i+1)
			if obj {
				var err error
				if i, err = skipMemberName(b, i); err != nil {
					return 0, err
				}
			}
			break
		}
		if i >= len(b) {
			return 0, errJSONEnd
		}
	}
}

// skipMemberName skips `"name" :` and the space after, returning where
// the member's value starts.
func skipMemberName(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errJSONEnd
	}
	if b[i] != '"' {
		return 0, &jsonSyntaxError{i, fmt.Sprintf("invalid character %q looking for a member name", b[i])}
	}
	end, _, err := scanString(b, i)
	if err != nil {
		return 0, err
	}
	i = skipSpace(b, end)
	if i >= len(b) {
		return 0, errJSONEnd
	}
	if b[i] != ':' {
		return 0, &jsonSyntaxError{i, fmt.Sprintf("invalid character %q after a member name", b[i])}
	}
	i = skipSpace(b, i+1)
	if i >= len(b) {
		return 0, errJSONEnd
	}
	return i, nil
}
