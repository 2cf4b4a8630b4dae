package replay

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/session"
)

// Survey is what one pass over a recording tells before a replay: where
// its traffic went (for the original-host refusal) and its span.
type Survey struct {
	Origin      guard.Origin
	Exchanges   uint64
	First, Last int64 // earliest and latest request start, Unix ns
}

// Span is the time from the first request's start to the last one's.
func (s *Survey) Span() time.Duration { return time.Duration(s.Last - s.First) }

// SurveyRecording reads src to its end, collecting the server address and
// Host header of every exchange and the span of its requests. It is one
// pass over the recording, made before anything is sent, because the
// session index does not carry server addresses; the replay then opens
// the recording again.
func SurveyRecording(ctx context.Context, src session.Source) (*Survey, error) {
	s := &Survey{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ex, err := src.Next()
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the recording for its original host: %w", err)
		}
		s.Exchanges++
		s.Origin.AddExchange(ex)
		if t := ex.Timing.RequestStart; t != 0 {
			if s.First == 0 || t < s.First {
				s.First = t
			}
			if t > s.Last {
				s.Last = t
			}
		}
	}
}
