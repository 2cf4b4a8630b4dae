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
//
// Nothing is sent while it runs, so the target's core is idle: the
// decoding (one goroutine) and the survey proper (this one) overlap, in
// batches of exchanges decoded into reused buffers (surveyBatch ×
// surveyBatches exchanges at most in memory), which also spares an
// allocation per exchange when src can Read into one it is given.
func SurveyRecording(ctx context.Context, src session.Source) (*Survey, error) {
	s := &Survey{Plan: corrplan.Stored(src)}
	var b *corrplan.Builder
	if s.Plan == nil {
		b, s.PlanComputed = corrplan.NewBuilder(0), true
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full, free := make(chan *surveyBatchBuf, surveyBatches), make(chan *surveyBatchBuf, surveyBatches)
	for range surveyBatches {
		free <- &surveyBatchBuf{exs: make([]*session.Exchange, surveyBatch)}
	}
	go surveyDecode(ctx, src, full, free)
	for bt := range full {
		for _, ex := range bt.exs[:bt.n] {
			s.add(ex, b)
		}
		if err := bt.err; err == io.EOF {
			if b != nil {
				s.Plan = b.Plan()
			}
			s.Conns = connRecords(src)
			return s, nil
		} else if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, fmt.Errorf("reading the recording for its original host: %w", err)
		}
		free <- bt
	}
	return nil, ctx.Err() // not reached: the decoder ends on a batch with an error
}

// surveyBatch exchanges go from the decoder to the survey at a time, in
// one of surveyBatches buffers that circulate between the two.
const surveyBatch, surveyBatches = 128, 4

// surveyBatchBuf is one batch: exs[:n] decoded, then err when the
// decoding stopped (io.EOF at the end).
type surveyBatchBuf struct {
	exs []*session.Exchange
	n   int
	err error
}

// surveyDecode decodes src into the buffers taken from free and hands
// them to full, until an error (io.EOF at the end, or ctx's) ends a
// batch; then it closes full.
func surveyDecode(ctx context.Context, src session.Source, full chan<- *surveyBatchBuf, free <-chan *surveyBatchBuf) {
	defer close(full)
	reader, reuse := src.(interface{ Read(*session.Exchange) error })
	for {
		var bt *surveyBatchBuf
		select {
		case bt = <-free:
		case <-ctx.Done():
			return
		}
		bt.n, bt.err = 0, ctx.Err()
		for bt.err == nil && bt.n < len(bt.exs) {
			if reuse {
				if bt.exs[bt.n] == nil {
					bt.exs[bt.n] = new(session.Exchange)
				}
				bt.err = reader.Read(bt.exs[bt.n])
			} else {
				bt.exs[bt.n], bt.err = src.Next()
			}
			if bt.err == nil {
				bt.n++
			}
		}
		full <- bt
		if bt.err != nil {
			return
		}
	}
}

// add counts one exchange: its origin, its span, and the plan's builder
// (nil when the recording holds its plan). None of them keeps ex's slices.
func (s *Survey) add(ex *session.Exchange, b *corrplan.Builder) {
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
