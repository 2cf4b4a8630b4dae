package compare

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pattern is a parsed --ignore JSON path: segments "key", "[3]", "*".
type pattern struct {
	text string
	segs []string
}

// parsePattern reads "$.a.b[*].c", "$.a[\"x y\"]", "$.*".
func parsePattern(s string) (pattern, error) {
	p := pattern{text: s}
	rest := strings.TrimPrefix(s, "$")
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			i := strings.IndexAny(rest, ".[")
			if i < 0 {
				i = len(rest)
			}
			if i == 0 {
				return p, fmt.Errorf("ignore %q: empty key after '.'; give e.g. $.items[*].updated_at", s)
			}
			p.segs = append(p.segs, rest[:i])
			rest = rest[i:]
		case '[':
			j := strings.IndexByte(rest, ']')
			if strings.HasPrefix(rest, `["`) {
				// a quoted key: find the closing quote, then ]
				var k string
				dec := json.NewDecoder(strings.NewReader(rest[1:]))
				if err := dec.Decode(&k); err != nil {
					return p, fmt.Errorf("ignore %q: bad quoted key: %v", s, err)
				}
				n := int(dec.InputOffset()) + 1
				if n >= len(rest) || rest[n] != ']' {
					return p, fmt.Errorf("ignore %q: missing ']' after a quoted key", s)
				}
				p.segs = append(p.segs, k)
				rest = rest[n+1:]
				continue
			}
			if j < 0 {
				return p, fmt.Errorf("ignore %q: missing ']'", s)
			}
			in := rest[1:j]
			if in != "*" {
				if _, err := strconv.Atoi(in); err != nil {
					return p, fmt.Errorf("ignore %q: [%s] is neither an index nor [*]", s, in)
				}
			}
			p.segs = append(p.segs, "["+in+"]")
			rest = rest[j+1:]
		default:
			return p, fmt.Errorf("ignore %q: unexpected %q; give e.g. $.items[*].updated_at", s, rest[0])
		}
	}
	return p, nil
}

// covers reports whether the pattern names path or one of its ancestors.
func (p pattern) covers(path []byte) bool {
	segs := splitPath(string(path))
	if len(segs) < len(p.segs) {
		return false
	}
	for i, ps := range p.segs {
		s := segs[i]
		switch {
		case ps == s:
		case ps == "*" && !strings.HasPrefix(s, "["):
		case ps == "[*]" && strings.HasPrefix(s, "["):
		case ps == "*" && strings.HasPrefix(s, "["): // $.a.* also covers array items
		default:
			return false
		}
	}
	return true
}

// splitPath splits a path written by the walker into the pattern's
// segments. Quoted keys are unquoted.
func splitPath(s string) []string {
	var segs []string
	rest := strings.TrimPrefix(s, "$")
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			i := strings.IndexAny(rest, ".[")
			if i < 0 {
				i = len(rest)
			}
			segs = append(segs, rest[:i])
			rest = rest[i:]
		case '[':
			if strings.HasPrefix(rest, `["`) {
				var k string
				dec := json.NewDecoder(strings.NewReader(rest[1:]))
				if dec.Decode(&k) != nil {
					return append(segs, rest)
				}
				n := int(dec.InputOffset()) + 2
				segs = append(segs, k)
				rest = rest[min(n, len(rest)):]
				continue
			}
			j := strings.IndexByte(rest, ']')
			if j < 0 {
				return append(segs, rest)
			}
			segs = append(segs, rest[:j+1])
			rest = rest[j+1:]
		default:
			return append(segs, rest)
		}
	}
	return segs
}

// volatile reports whether two differing values look like values that
// change between any two answers: timestamps, UUIDs, JWTs, random ids.
func volatile(key, a, b string) bool {
	switch {
	case isTimestamp(a) && isTimestamp(b):
		return true
	case timeName(key) && isEpoch(a) && isEpoch(b):
		return true
	case isUUID(a) && isUUID(b):
		return true
	case isJWT(a) && isJWT(b):
		return true
	case randomShape(a, b):
		return true
	}
	return false
}

var timeLayouts = []string{time.RFC3339Nano, http.TimeFormat, time.RFC1123Z, "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

func isTimestamp(s string) bool {
	if len(s) < 10 || len(s) > 40 {
		return false
	}
	for _, l := range timeLayouts {
		if _, err := time.Parse(l, s); err == nil {
			return true
		}
	}
	return false
}

func timeName(k string) bool {
	k = strings.ToLower(k)
	for _, suf := range []string{"at", "time", "date", "ts", "timestamp", "expires", "expiry", "created", "updated", "modified"} {
		if strings.HasSuffix(k, suf) {
			return true
		}
	}
	return false
}

// isEpoch: Unix seconds or milliseconds between 2001 and 2100.
func isEpoch(s string) bool {
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false
	}
	return (n >= 1e9 && n < 4.2e9) || (n >= 1e12 && n < 4.2e12)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c rune) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isJWT(s string) bool {
	if len(s) < 20 || !strings.HasPrefix(s, "eyJ") || strings.Count(s, ".") != 2 {
		return false
	}
	for _, c := range s {
		if !(c == '.' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// randomShape: both values of one length (8 or more), punctuation at the
// same places, no spaces, at least two digits each, and the same run of
// letters before the first digit-bearing part (a prefix such as "ord_").
func randomShape(a, b string) bool {
	if len(a) != len(b) || len(a) < 8 || len(a) > 512 {
		return false
	}
	da, db := 0, 0
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		aa, ab := alnum(ca), alnum(cb)
		if aa != ab || (!aa && ca != cb) || ca == ' ' || ca == '\n' {
			return false
		}
		if ca >= '0' && ca <= '9' {
			da++
		}
		if cb >= '0' && cb <= '9' {
			db++
		}
	}
	if da < 2 || db < 2 {
		return false
	}
	// A shared prefix up to the first punctuation, when there is one
	// within the first 8 bytes, must be equal ("ord_" vs "ord_").
	if i := strings.IndexAny(a, "_-.:"); i > 0 && i <= 8 {
		return a[:i] == b[:i]
	}
	return true
}

func alnum(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

type match int

const (
	matchDiffer match = iota
	matchEqual
	matchVolatile
)

// partsMatch compares two header values part by part, split at / ? & = ;
// and commas.
func partsMatch(a, b string, eq Equivalent, heuristics bool) match {
	sep := func(r rune) bool { return strings.ContainsRune("/?&=;, ", r) }
	pa, pb := strings.FieldsFunc(a, sep), strings.FieldsFunc(b, sep)
	if len(pa) != len(pb) {
		return matchDiffer
	}
	res := matchEqual
	for i := range pa {
		if pa[i] == pb[i] || (eq != nil && eq(pa[i], pb[i])) {
			continue
		}
		if heuristics && volatile("", pa[i], pb[i]) {
			res = matchVolatile
			continue
		}
		return matchDiffer
	}
	return res
}
