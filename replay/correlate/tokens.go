package correlate

import (
	"encoding/binary"
	"slices"
	"strings"
)

// tokenSet holds the long token-like recorded values a table searches for
// inside other text, indexed by their first prefixLen bytes. Searching a
// text costs one map look-up per position, whatever the number of
// tokens: asking strings.Contains of every token was a thousand scans of
// every header of every request once a session's table had filled (a
// client that logs in again and again).
//
// The index is the set: a token is in it when its head's list holds it.
// A client that logs in every few requests adds a token to its session's
// set and its run's, and removes the oldest from each, at every login; a
// map of the tokens beside the index doubled the map work of both, and
// heads kept as strings hashed 8 bytes through a string header each time.
type tokenSet struct {
	n      int                 // tokens held
	byHead map[uint64]headList // first prefixLen bytes (see head) -> tokens
	// heads counts the tokens by a hash of their first prefixLen bytes
	// (headBucket): a position of a text whose bucket is empty starts no
	// token, and is passed over without a map look-up. A session's
	// Authorization, Host and Accept values were each looked up at every
	// position once its table held more than scanTokens tokens. Made with
	// the first token past scanTokens.
	heads *[headBuckets]uint16
}

// headList is the tokens that start with the same prefixLen bytes, in
// the order they were added. Random tokens rarely share a head, so the
// first is held in place: no slice to allocate per token. Some share
// it all (every JWT of one algorithm starts "eyJhbGci"): a list longer
// than scanTokens also has a set of its tokens, so that asking whether
// it holds one (at every token added) is not a scan of thousands.
type headList struct {
	first string
	more  []string
	set   map[string]struct{} // the tokens, once more holds scanTokens
}

// has reports whether l holds tok.
func (l *headList) has(tok string) bool {
	if l.set != nil {
		_, ok := l.set[tok]
		return ok
	}
	return l.first == tok || slices.Contains(l.more, tok)
}

// push adds tok, which l does not hold, after the others.
func (l *headList) push(tok string) {
	l.more = append(l.more, tok)
	switch {
	case l.set != nil:
		l.set[tok] = struct{}{}
	case len(l.more) >= scanTokens:
		l.set = make(map[string]struct{}, 2*len(l.more))
		l.set[l.first] = struct{}{}
		for _, t := range l.more {
			l.set[t] = struct{}{}
		}
	}
}

// headBuckets is the size of a tokenSet's heads.
const headBuckets = 1024

// head is the prefixLen bytes of s at i as a number, a map key that
// hashes without a string header.
func head(s string, i int) uint64 {
	_ = s[i+prefixLen-1]
	return binary.LittleEndian.Uint64([]byte(s[i : i+prefixLen]))
}

// headBucket is the bucket of a head.
func headBucket(h uint64) uint32 {
	return uint32((h * 0x9E3779B97F4A7C15) >> (64 - 10))
}

// scanTokens is how many tokens are searched for one by one: a few
// scans of the text (strings.Contains is fast) cost less than a map
// look-up at each of its positions.
const scanTokens = 8

// prefixLen is shorter than the shortest token-like value (TokenLike
// wants 16 bytes).
const prefixLen = 8

func (s *tokenSet) len() int { return s.n }

func (s *tokenSet) add(tok string) {
	if len(tok) < prefixLen {
		return
	}
	h := head(tok, 0)
	l, ok := s.byHead[h]
	if ok && l.has(tok) {
		return
	}
	if !ok {
		if s.byHead == nil {
			s.byHead = make(map[uint64]headList)
		}
		l.first = tok
	} else {
		l.push(tok)
	}
	s.byHead[h] = l
	s.n++
	if s.heads == nil && s.n > scanTokens {
		s.heads = new([headBuckets]uint16)
		for h, l := range s.byHead {
			s.heads[headBucket(h)] += uint16(1 + len(l.more))
		}
	} else if s.heads != nil {
		s.heads[headBucket(h)]++
	}
}

func (s *tokenSet) remove(tok string) {
	if len(tok) < prefixLen {
		return
	}
	h := head(tok, 0)
	l, ok := s.byHead[h]
	if !ok || !l.has(tok) {
		return
	}
	if l.set != nil {
		delete(l.set, tok)
	}
	switch {
	case l.first == tok && len(l.more) == 0:
		delete(s.byHead, h)
	case l.first == tok:
		// The oldest goes first (eviction): no copy of the others,
		// which push's append leaves behind when it grows the slice.
		l.first, l.more[0], l.more = l.more[0], "", l.more[1:]
		s.byHead[h] = l
	default:
		i := slices.Index(l.more, tok)
		l.more = slices.Delete(l.more, i, i+1)
		s.byHead[h] = l
	}
	s.n--
	if s.heads != nil {
		s.heads[headBucket(h)]--
	}
}

// in returns the tokens that occur in text, each once, in the order of
// their first occurrence; nil when none does.
func (s *tokenSet) in(text string) []string {
	if s.n == 0 {
		return nil
	}
	var found []string
	if s.heads == nil {
		for _, l := range s.byHead {
			if strings.Contains(text, l.first) {
				found = append(found, l.first)
			}
			for _, tok := range l.more {
				if strings.Contains(text, tok) {
					found = append(found, tok)
				}
			}
		}
		return found
	}
	for i := 0; i+prefixLen <= len(text); i++ {
		h := head(text, i)
		if s.heads[headBucket(h)] == 0 {
			continue
		}
		l, ok := s.byHead[h]
		if !ok {
			continue
		}
		if strings.HasPrefix(text[i:], l.first) && !slices.Contains(found, l.first) {
			found = append(found, l.first)
		}
		for _, tok := range l.more {
			if strings.HasPrefix(text[i:], tok) && !slices.Contains(found, tok) {
				found = append(found, tok)
			}
		}
	}
	return found
}
