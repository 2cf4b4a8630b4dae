package replay

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/corrplan"
)

// Survey is what one pass over a recording tells before a replay: where
// its traffic went (for the original-host refusal), its span, and its
// correlation plan (for WithPlan).
type Survey struct {
	Origin      guard.Origin
	Exchanges   uint64
	First, Last int64 // earliest and latest request start, Unix ns
	// Plan is the recording's correlation plan: the one its metadata
	// holds, or, for a recording made without one, computed in this pass
	// (PlanComputed says which).
	Plan         *session.CorrelationPlan
	PlanComputed bool
	// Conns are the recording's connection records (format 1.2), for
	// WithRecordedConns; none for an older recording.
	Conns []session.ConnInfo
}

// Span is the time from the first request's start to the last one's.
func (s *Survey) Span() time.Duration { return time.Duration(s.Last - s.First) }

// SurveyRecording reads src to its end, collecting the server address and
// Host header of every exchange and the span of its requests. It is one
// pass over the recording, made before anything is sent, because the
// session index does not carry server addresses; the replay then opens
// the recording again. When src (a session.Reader or MultiReader) holds
// no correlation plan in its metadata, the pass computes one, in memory
// bounded whatever the recording's length (see package corrplan).
func SurveyRecording(ctx context.Context, src session.Source) (*Survey, error) {
	s := &Survey{Plan: corrplan.Stored(src)}
	var b *corrplan.Builder
	if s.Plan == nil {
		b, s.PlanComputed = corrplan.NewBuilder(0), true
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ex, err := src.Next()
		if err == io.EOF {
			if b != nil {
				s.Plan = b.Plan()
			}
			s.Conns = connRecords(src)
			return s, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the recording for its original host: %w", err)
		}
		s.Exchanges++
		s.Origin.AddExchange(ex)
		if b != nil {
			b.Add(ex)
		}
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
