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
//
// No byte is rare in every body: "assertion" is spelt with the eight most
// common letters of English, and a listing of prices meets its 'r' every
// few dozen bytes, each a call to IndexByte that finds nothing. So a
// search that meets its anchor densely looks, once, for another byte
// that all its names hold and that is not near (jsonAnchor.alts), and
// goes on with that one if there is one, the way bytes.Index gives up
// IndexByte when it fails too often.

// jsonNames is the pre-computed form of the JSON rules.
type jsonNames struct {
	set     map[string]bool // lower-case
	anchors []jsonAnchor    // each ASCII name under one
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
	next byteSet
	// alts anchor the same names on the other bytes they all hold,
	// rarest first, for when c turns out dense in a body.
	alts []jsonAnchor
}

// anchoredName is a lower-case ASCII name and where its anchor is in it
// (the first place, which the search relies on).
type anchoredName struct {
	name string
	off  int
}

// byteSet is a set of bytes, one bit each.
type byteSet [4]uint64

func (s *byteSet) add(c byte)      { s[c>>6] |= 1 << (c & 63) }
func (s *byteSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }

// Dense anchors. A place where an anchor turns up costs a call to
// IndexByte and a look at the byte after it, about what one pass takes to
// search 500 bytes for a byte that is not there. So once a search has met
// its anchor denseHits times, more often than once in denseGap bytes on
// average, it looks for the first place of each alternative anchor from
// there on, and goes on with the first one not met within farGap bytes
// (or with none: when one is not met again in either case, no name of
// the group is further on). When every alternative is near, the body is
// text-like, and the first anchor goes on to the end.
const (
	denseHits = 16
	denseGap  = 128
	farGap    = 512
)

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
		if !isASCII(name) {
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
		n.anchors[k].add(name)
	}
	for i := range n.anchors {
		a := &n.anchors[i]
		// The bytes every name of a holds, rarest first.
		var common []byte
		for c := 0; c < 256; c++ {
			if byte(c) == a.c {
				continue
			}
			all := true
			for _, nm := range a.names {
				all = all && strings.IndexByte(nm.name, byte(c)) >= 0
			}
			if all {
				common = append(common, byte(c))
			}
		}
		sort.SliceStable(common, func(i, j int) bool { return rank(common[i]) > rank(common[j]) })
		for _, c := range common {
			alt := jsonAnchor{c: c}
			for _, nm := range a.names {
				alt.add(nm.name)
			}
			a.alts = append(a.alts, alt)
		}
	}
	return n
}

// add puts name under a, anchored where a's byte first is in it.
func (a *jsonAnchor) add(name string) {
	off := strings.IndexByte(name, a.c)
	a.names = append(a.names, anchoredName{name, off})
	if off+1 < len(name) {
		a.next.add(name[off+1])
	} else {
		a.next.add('"')
	}
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

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
		found, stop := a.find(body, 0, len(a.alts) > 0)
		if found {
			return true
		}
		if stop == len(body) {
			continue
		}
		// Given up at stop, having compared every name of a whose anchor
		// is before it. One whose anchor is not has its opening quote at
		// stop or after: no byte before its anchor, the quote included,
		// is the anchor (off is where the anchor first is in a name), so
		// the last one met, at stop-1, is before the quote. Its other
		// bytes are there too.
		alt, none := a.farAlt(body, stop)
		switch {
		case none:
			found = false
		case alt != nil:
			found, _ = alt.find(body, stop, false)
		default:
			found, _ = a.find(body, stop, false)
		}
		if found {
			return true
		}
	}
	return false
}

// farAlt returns the first of a's alternative anchors not met in body
// within farGap bytes from stop, in either case, or nil; none says one of
// them is not met at all, so that no name of a is there.
func (a *jsonAnchor) farAlt(body []byte, stop int) (alt *jsonAnchor, none bool) {
	for i := range a.alts {
		b := &a.alts[i]
		lo, up := b.cases()
		end := min(len(body), stop+farGap)
		if bytes.IndexByte(body[stop:end], lo) >= 0 || up != lo && bytes.IndexByte(body[stop:end], up) >= 0 {
			continue
		}
		if bytes.IndexByte(body[end:], lo) < 0 && (up == lo || bytes.IndexByte(body[end:], up) < 0) {
			return nil, true
		}
		return b, false
	}
	return nil, false
}

// cases returns a's anchor in lower and upper case (twice the same byte
// when it is no letter).
func (a *jsonAnchor) cases() (lo, up byte) {
	lo, up = a.c, a.c
	if 'a' <= lo && lo <= 'z' {
		up = lo - 'a' + 'A'
	}
	return lo, up
}

// find reports whether one of a's names, quoted, is in body where its
// anchor turns up at from or after, in either case. It searches the two
// cases at once, in order, so that when it gives a dense anchor up
// (giveUp) it stops at one place, stop, having looked at every
// occurrence before it; stop is len(body) when it went to the end.
func (a *jsonAnchor) find(body []byte, from int, giveUp bool) (bool, int) {
	lo, up := a.cases()
	next := func(c byte, i int) int {
		if i >= len(body) {
			return len(body)
		}
		if k := bytes.IndexByte(body[i:], c); k >= 0 {
			return i + k
		}
		return len(body)
	}
	pl := next(lo, from)
	pu := len(body)
	if up != lo {
		pu = next(up, from)
	}
	hits := 0
	for {
		p := min(pl, pu)
		if p >= len(body) {
			return false, len(body)
		}
		if p == pl {
			pl = next(lo, p+1)
		} else {
			pu = next(up, p+1)
		}
		if p+1 < len(body) && a.next.has(lowerASCII(body[p+1])) {
			for _, nm := range a.names {
				s, e := p-nm.off, p-nm.off+len(nm.name)
				if s >= 1 && e < len(body) && body[s-1] == '"' && body[e] == '"' && equalFoldASCII(body[s:e], nm.name) {
					return true, p
				}
			}
		}
		if hits++; giveUp && hits >= denseHits && p+1-from < hits*denseGap {
			return false, p + 1
		}
	}
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
