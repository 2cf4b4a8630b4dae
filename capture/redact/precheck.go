package redact

import (
	"bytes"
	"slices"
	"sort"
	"strings"
)

// This file holds the pre-check that tells whether a JSON body can hold a
// member a rule names. Most bodies hold none (listings, orders, errors),
// and the pre-check runs on every one of them, so it must not look at
// each byte in turn, as a table-driven loop did (over a second per
// gigabyte, most of the cost of default redaction on a pcap import).
// Instead each name is found through its anchor, one rare byte of it,
// searched for in both cases with bytes.IndexByte (vector instructions,
// tens of bytes a cycle); only where an anchor turns up, and the byte
// after it continues some name, are names compared.

// jsonNames is the pre-computed form of the JSON rules.
type jsonNames struct {
	set     map[string]bool // lower-case
	anchors []jsonAnchor
	maxLen  int
	// fold says some key that is not plain ASCII could still match: a
	// name has non-ASCII bytes, or an 'i' or 'k' (see dottedCapitalI).
	fold, nonASCII bool
}

// jsonAnchor is a byte searched for and the names it stands for.
type jsonAnchor struct {
	c     byte // lower-case
	names []anchoredName
	// next holds the lower-case bytes that follow c in the names ('"'
	// where c ends one): most places c turns up are told by that byte
	// alone, before any name is compared.
	next [256]bool
}

// anchoredName is a lower-case ASCII name and where its anchor is in it.
type anchoredName struct {
	name string
	off  int
}

// byteRank orders the bytes of names from the most to the least frequent
// in JSON API bodies: English letters, then digits and separators, then
// the rare letters. A byte not listed counts as the most frequent.
const byteRank = "etaoinsrlcdhu0123456789-.:/ _mpfgybwvkxjqz"

func rank(c byte) int {
	if i := strings.IndexByte(byteRank, c); i >= 0 {
		return i
	}
	return 0
}

// anchorOf picks the byte of name to search for: its rarest, unless a
// rare byte already searched for (taken) is in it, which then costs no
// further pass over the body.
func anchorOf(name string, taken map[byte]bool) byte {
	best := name[0]
	for i := 0; i < len(name); i++ {
		if c := name[i]; rank(c) > rank(best) {
			best = c
		}
	}
	if taken[best] {
		return best
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; taken[c] && rank(c) >= rank('m') {
			return c
		}
	}
	return best
}

func newJSONNames(names map[string]bool) jsonNames {
	n := jsonNames{set: names}
	sorted := make([]string, 0, len(names))
	for name := range names {
		sorted = append(sorted, name)
	}
	// Short names first: they have the fewest bytes to choose from, and
	// the longer ones then share their anchors.
	sort.Slice(sorted, func(i, j int) bool {
		if len(sorted[i]) != len(sorted[j]) {
			return len(sorted[i]) < len(sorted[j])
		}
		return sorted[i] < sorted[j]
	})
	taken := map[byte]bool{}
	for _, name := range sorted {
		n.maxLen = max(n.maxLen, len(name))
		if strings.ContainsAny(name, "ik") {
			n.fold = true
		}
		ascii := true
		for i := 0; i < len(name); i++ {
			if name[i] >= 0x80 {
				ascii = false
			}
		}
		if !ascii {
			n.fold, n.nonASCII = true, true
			continue
		}
		c := anchorOf(name, taken)
		taken[c] = true
		k := slices.IndexFunc(n.anchors, func(a jsonAnchor) bool { return a.c == c })
		if k < 0 {
			k = len(n.anchors)
			n.anchors = append(n.anchors, jsonAnchor{c: c})
		}
		a := &n.anchors[k]
		off := strings.IndexByte(name, c)
		a.names = append(a.names, anchoredName{name, off})
		if off+1 < len(name) {
			a.next[name[off+1]] = true
		} else {
			a.next['"'] = true
		}
	}
	return n
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// mayHaveJSONKey reports whether body can hold a member named by a JSON
// rule: a name must appear as a quoted string (ASCII letters in any case),
// unless escapes or case-folding runes could spell it otherwise, in which
// case the body is scanned. False means redactJSON would change nothing.
func (r *Redactor) mayHaveJSONKey(body []byte) bool { return r.jsonNames.mayHave(body) }

// mayHave is mayHaveJSONKey for the names of n.
func (n *jsonNames) mayHave(body []byte) bool { return n.unusual(body) || n.anchored(body) }

// unusual reports whether body holds what could spell a name otherwise
// than in its own ASCII bytes: an escape, or a rune that lower-cases to
// a letter of one.
func (n *jsonNames) unusual(body []byte) bool {
	return n.nonASCII || bytes.IndexByte(body, '\\') >= 0 ||
		n.fold && (bytes.Contains(body, dottedCapitalI) || bytes.Contains(body, kelvinSign))
}

// anchored reports whether one of n's names, quoted, is in body as
// plain ASCII, in any case.
func (n *jsonNames) anchored(body []byte) bool {
	for i := range n.anchors {
		a := &n.anchors[i]
		if a.find(body, a.c) || 'a' <= a.c && a.c <= 'z' && a.find(body, a.c-'a'+'A') {
			return true
		}
	}
	return false
}

// find reports whether one of a's names, quoted, is in body where c
// (its anchor, in one case) turns up.
func (a *jsonAnchor) find(body []byte, c byte) bool {
	for i := 0; i < len(body); {
		k := bytes.IndexByte(body[i:], c)
		if k < 0 {
			return false
		}
		p := i + k
		i = p + 1
		if p+1 >= len(body) || !a.next[lowerASCII(body[p+1])] {
			continue
		}
		for _, nm := range a.names {
			s, e := p-nm.off, p-nm.off+len(nm.name)
			if s >= 1 && e < len(body) && body[s-1] == '"' && body[e] == '"' && equalFoldASCII(body[s:e], nm.name) {
				return true
			}
		}
	}
	return false
}

// equalFoldASCII compares b with the lower-case ASCII name, folding only
// ASCII letters in b.
func equalFoldASCII(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i := range b {
		if lowerASCII(b[i]) != name[i] {
			return false
		}
	}
	return true
}
