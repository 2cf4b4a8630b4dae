package session

import "io"

// SliceSource is a Source over exchanges already in memory: a demo's
// made-up traffic, a filter's output, a recording loaded whole, or the
// hand-made exchanges of a test. It hands them out in the slice's order
// without changing the slice.
type SliceSource struct {
	Exchanges []*Exchange
	// Err, when set, is returned after the last exchange instead of
	// io.EOF, as a source that fails part way would.
	Err  error
	next int
}

// NewSliceSource returns a SliceSource over xs.
func NewSliceSource(xs ...*Exchange) *SliceSource { return &SliceSource{Exchanges: xs} }

// Next returns the next exchange, and Err or io.EOF after the last.
func (s *SliceSource) Next() (*Exchange, error) {
	if s.next >= len(s.Exchanges) {
		if s.Err != nil {
			return nil, s.Err
		}
		return nil, io.EOF
	}
	s.next++
	return s.Exchanges[s.next-1], nil
}

// WithoutSessions hands out src's exchanges with their session key and
// token events emptied. It is the first half of recomputing sessions (the
// identity tracker then assigns them afresh rather than appending to what
// was stored) and the whole of "one session per connection".
func WithoutSessions(src Source) Source { return clearing{src} }

type clearing struct{ src Source }

func (c clearing) Next() (*Exchange, error) {
	x, err := c.src.Next()
	if x != nil {
		x.Session, x.Tokens = "", nil
	}
	return x, err
}

var (
	_ Source = (*SliceSource)(nil)
	_ Source = clearing{}
)
