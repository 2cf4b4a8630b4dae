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
}

// scanTokens is how many tokens are searched for one by one: a few
// scans of the text (strings.Contains is fast) cost less than a map
// look-up at each of its positions.
const scanTokens = 8

// prefixLen is shorter than the shortest token-like value (TokenLike
// wants 16 bytes).
const prefixLen = 8

func newTokenSet() tokenSet {
	return tokenSet{all: make(map[string]struct{}), byHead: make(map[string][]string)}
}

func (s *tokenSet) len() int { return len(s.all) }

func (s *tokenSet) add(tok string) {
	if _, ok := s.all[tok]; ok || len(tok) < prefixLen {
		return
	}
	s.all[tok] = struct{}{}
	h := tok[:prefixLen]
	s.byHead[h] = append(s.byHead[h], tok)
}

func (s *tokenSet) remove(tok string) {
	if _, ok := s.all[tok]; !ok {
		return
	}
	delete(s.all, tok)
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
	if len(s.all) <= scanTokens {
		for tok := range s.all {
			if strings.Contains(text, tok) {
				found = append(found, tok)
			}
		}
		return found
	}
	for i := 0; i+prefixLen <= len(text); i++ {
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
