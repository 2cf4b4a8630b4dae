package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// This is the tokenizer-based JSON redaction that scan.go replaced, kept
// as the reference its output is checked against (FuzzJSONReference).

// span is one value to replace in a JSON document.
type span struct {
	start, end int
	repl       []byte
}

// redactJSON hashes the values of named members at any depth, rewriting
// only the bytes of those values: whitespace, member order and number
// formatting elsewhere stay as sent. A string value is hashed as its
// decoded text (so it matches the same token elsewhere); any other value
// except null (a number, an object) is hashed as its raw text and becomes a
// string, which keeps the document valid. On a syntax error (a truncated
// body) the values found before it are still redacted and the error is
// returned.
func (r *Redactor) redactJSONReference(body []byte, hit func(string)) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct{ obj, wantKey bool }
	var stack []frame
	var spans []span
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
	var err error
	for {
		var tok json.Token
		tok, err = dec.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{obj: true, wantKey: true})
			case '[':
				stack = append(stack, frame{})
			default:
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
				valueDone()
			}
			continue
		case string:
			n := len(stack)
			if n == 0 || !stack[n-1].obj || !stack[n-1].wantKey {
				valueDone()
				continue
			}
			stack[n-1].wantKey = false
			key := strings.ToLower(t)
			if !r.json[key] {
				continue
			}
			start := skipColon(body, int(dec.InputOffset()))
			var raw json.RawMessage
			if err = dec.Decode(&raw); err != nil {
				break
			}
			end := int(dec.InputOffset())
			valueDone()
			if start < 0 || end > len(body) || start >= end {
				continue
			}
			if repl, ok := r.jsonValue(body[start:end]); ok {
				spans = append(spans, span{start, end, repl})
				hit("json:" + key)
			}
			continue
		default:
			valueDone()
			continue
		}
		break
	}
	if errors.Is(err, io.EOF) {
		err = nil
	} else if err != nil {
		err = errors.Join(errNotJSON, err)
	}
	if len(spans) == 0 {
		return body, false, err
	}
	out := make([]byte, 0, len(body)+8*len(spans))
	last := 0
	for _, s := range spans {
		out = append(out, body[last:s.start]...)
		out = append(out, s.repl...)
		last = s.end
	}
	out = append(out, body[last:]...)
	return out, true, err
}

// skipColon returns the offset of the value that follows a member name
// ending at off: past white space, the colon, and white space again.
func skipColon(b []byte, off int) int {
	colon := false
	for i := off; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
		case ':':
			if colon {
				return -1
			}
			colon = true
		default:
			// The decoder may already have consumed the colon.
			return i
		}
	}
	return -1
}
