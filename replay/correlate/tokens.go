package correlate

import (
	"slices"
	"strings"
)

// tokenSet holds the long token-like recorded values a table searches for
// inside other text, indexed by their first prefixLen bytes. Searching a
// text costs one map look-up per position, whatever the number of
// tokens: asking strings.Contains of every token was a thousand scans of
// every header of every request once a session's table had filled (a
// client that logs in again and again).
type tokenSet struct {
	all    map[string]struct{}
	byHead map[string][]string // first prefixLen bytes -> tokens
	// heads counts the tokens by a hash of their first prefixLen bytes
	// (headBucket): a position of a text whose bucket is empty starts no
	// token, and is passed over without a map look-up. A session's
	// Authorization, Host and Accept values were each looked up at every
	// position once its table held more than scanTokens tokens. Made with
	// the first token past scanTokens.
	heads *[headBuckets]uint16
}

// headBuckets is the size of a tokenSet's heads.
const headBuckets = 1024

// headBucket is the bucket of the prefixLen bytes of s at i.
func headBucket(s string, i int) uint32 {
	_ = s[i+prefixLen-1]
	h := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
	return uint32((h * 0x9E3779B97F4A7C15) >> (64 - 10))
}

// scanTokens is how many tokens are searched for one by one: a few
// scans of the text (strings.Contains is fast) cost less than a map
// look-up at each of its positions.
const scanTokens = 8

// prefixLen is shorter than the shortest token-like value (TokenLike
// wants 16 bytes).
const prefixLen = 8

func (s *tokenSet) len() int { return len(s.all) }

func (s *tokenSet) add(tok string) {
	if _, ok := s.all[tok]; ok || len(tok) < prefixLen {
		return
	}
	if s.all == nil {
		s.all, s.byHead = make(map[string]struct{}), make(map[string][]string)
	}
	s.all[tok] = struct{}{}
	h := tok[:prefixLen]
	s.byHead[h] = append(s.byHead[h], tok)
	if s.heads == nil && len(s.all) > scanTokens {
		s.heads = new([headBuckets]uint16)
		for t := range s.all {
			s.heads[headBucket(t, 0)]++
		}
	} else if s.heads != nil {
		s.heads[headBucket(tok, 0)]++
	}
}

func (s *tokenSet) remove(tok string) {
	if _, ok := s.all[tok]; !ok {
		return
	}
	delete(s.all, tok)
	if s.heads != nil {
		s.heads[headBucket(tok, 0)]--
	}
	h := tok[:prefixLen]
	list := s.byHead[h]
	for i, t := range list {
		if t == tok {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.byHead, h)
	} else {
		s.byHead[h] = list
	}
}

// in returns the tokens that occur in text, each once, in the order of
// their first occurrence; nil when none does.
func (s *tokenSet) in(text string) []string {
	if len(s.all) == 0 {
		return nil
	}
	var found []string
	if s.heads == nil {
		for tok := range s.all {
			if strings.Contains(text, tok) {
				found = append(found, tok)
			}
		}
		return found
	}
	for i := 0; i+prefixLen <= len(text); i++ {
		if s.heads[headBucket(text, i)] == 0 {
			continue
		}
		list, ok := s.byHead[text[i:i+prefixLen]]
		if !ok {
			continue
		}
		for _, tok := range list {
			if strings.HasPrefix(text[i:], tok) && !slices.Contains(found, tok) {
				found = append(found, tok)
			}
		}
	}
	return found
}
