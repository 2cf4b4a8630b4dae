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

// BodyFilter is a Source that can leave out the recorded response bodies
// its consumer has no use for, before it copies them: a Reader, a
// MultiReader, and the wrappers that give a replay its session keys
// (WithoutSessions, identity's WithSessionKeys), which pass the filter on
// to the source they wrap.
type BodyFilter interface {
	Source
	// FilterResponseBodies makes the exchanges read from now on carry
	// their recorded response body only when keep(ex) is true (see
	// ResponseBodies); nil keeps every body again. It reports whether
	// the source applies the filter: a wrapper over a source that cannot
	// says false, and its consumer must drop what it does not want itself.
	FilterResponseBodies(keep func(*Exchange) bool) bool
}

// FilterResponseBodies calls src's FilterResponseBodies when it has one,
// and reports whether src applies keep.
func FilterResponseBodies(src Source, keep func(*Exchange) bool) bool {
	bf, ok := src.(BodyFilter)
	return ok && bf.FilterResponseBodies(keep)
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

// ReadInto returns a function that decodes src's next exchange into an
// Exchange the caller allocated, as Next would hand it out (io.EOF at the
// end), when src can: a Reader, a MultiReader, or WithoutSessions over
// one. ex is zero, or one read into before, whose slices the decoding
// reuses (the survey's batches). A consumer that keeps each exchange
// beside a record of its own (the replay's look-ahead items) then
// allocates the two at once. ok is false for any other source, which
// Next serves.
func ReadInto(src Source) (read func(ex *Exchange) error, ok bool) {
	switch s := src.(type) {
	case *Reader:
		return s.Read, true
	case *MultiReader:
		return s.Read, true
	case clearing:
		inner, ok := ReadInto(s.src)
		if !ok {
			return nil, false
		}
		return func(ex *Exchange) error {
			err := inner(ex)
			if err == nil {
				ex.Session, ex.Tokens = "", nil
			}
			return err
		}, true
	}
	return nil, false
}

// FilterResponseBodies passes keep on to the source wrapped. keep sees
// the exchange as that source decoded it, its session key not yet
// emptied.
func (c clearing) FilterResponseBodies(keep func(*Exchange) bool) bool {
	return FilterResponseBodies(c.src, keep)
}

var (
	_ Source     = (*SliceSource)(nil)
	_ BodyFilter = clearing{}
	_ BodyFilter = (*Reader)(nil)
	_ BodyFilter = (*MultiReader)(nil)
)
