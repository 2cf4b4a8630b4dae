package identity

import (
	"errors"
	"io"

	"github.com/reprise-tool/reprise/session"
)

// Annotate returns a Source that yields src's exchanges with their
// Session and Tokens filled in by t, in order of Timing.RequestStart.
//
// Why reorder: a client can only use a token after the response that
// issued it has arrived, so in request-start order every token's issuing
// exchange comes before its first use. Sources do not quite give that
// order: capture emits an exchange when its response completes, and
// exchanges of different connections interleave. Annotate therefore holds
// exchanges in a buffer and releases the earliest once the newest request
// start it has read is more than the reorder window later (or the buffer
// holds WithMaxPending exchanges, or src ends). Within that bound, a
// token is always known before it is used. Beyond it, a request using a
// token before its issuer was seen starts a session of its own, and the
// issuing exchange then joins that session (Stats.LateTokens counts it).
//
// Annotate is the one front door for capture (wrapping the exchange
// stream before the recording writer) and for recomputing identities
// from any recording (wrapping its reader). Exchanges already carrying
// Tokens get the tracker's events appended; Recompute clears them first.
func (t *Tracker) Annotate(src session.Source) session.Source {
	return &annotator{t: t, src: src}
}

// Recompute is Annotate over src with the recorded session keys and token
// events dropped (session.WithoutSessions), so the tracker's sessions
// replace the recording's rather than add to them. Inspect, check and
// replay all recompute sessions through it.
func (t *Tracker) Recompute(src session.Source) session.Source {
	return t.Annotate(session.WithoutSessions(src))
}

// WithSessionKeys gives the exchanges of src, a reader of the recordings
// described by md, the sessions keys asks for: as recorded, recomputed by
// a Tracker made with opts, or none (one per connection). KeysAuto is
// resolved with keys.Resolve(md).
func WithSessionKeys(keys session.SessionKeys, md []session.Metadata, src session.Source, opts ...Option) (session.Source, error) {
	switch keys.Resolve(md) {
	case session.KeysRecompute:
		tr, err := NewTracker(opts...)
		if err != nil {
			return nil, err
		}
		return tr.Recompute(src), nil
	case session.KeysConnection:
		return session.WithoutSessions(src), nil
	}
	return src, nil
}

type pending struct {
	x   *session.Exchange
	seq uint64
}

func (p pending) before(q pending) bool {
	a, b := p.x.Timing.RequestStart, q.x.Timing.RequestStart
	if a != b {
		return a < b
	}
	return p.seq < q.seq
}

// pendingHeap is a min-heap by request start, then arrival; through
// session.HeapPush rather than container/heap, whose interface calls cost
// a third of the annotator's time.
type pendingHeap []pending

func (h *pendingHeap) push(p pending) { *h = session.HeapPush(*h, p, pending.before) }

func (h *pendingHeap) pop() (p pending) {
	p, *h = session.HeapPop(*h, pending.before)
	return p
}

type annotator struct {
	t      *Tracker
	src    session.Source
	h      pendingHeap
	seq    uint64
	newest int64
	eof    bool
	err    error
}

var _ session.BodyFilter = (*annotator)(nil)

// FilterResponseBodies passes keep on to the source annotated, widened to
// the response bodies the tracker reads itself (token exchanges'), so
// that recomputed sessions are those of a reading with every body.
func (a *annotator) FilterResponseBodies(keep func(*session.Exchange) bool) bool {
	if keep == nil {
		return session.FilterResponseBodies(a.src, nil)
	}
	return session.FilterResponseBodies(a.src, func(x *session.Exchange) bool {
		return a.t.readsResponseBody(x) || keep(x)
	})
}

func (a *annotator) ready() bool {
	if len(a.h) == 0 {
		return false
	}
	if a.eof || len(a.h) >= a.t.o.maxPending {
		return true
	}
	return a.h[0].x.Timing.RequestStart <= a.newest-int64(a.t.o.window)
}

// Next returns the next annotated exchange. An error from src other than
// io.EOF is returned once the exchanges read before it have been
// released, so that every good record is kept.
func (a *annotator) Next() (*session.Exchange, error) {
	for !a.ready() && !a.eof && a.err == nil {
		x, err := a.src.Next()
		if errors.Is(err, io.EOF) {
			a.eof = true
			break
		}
		if err != nil {
			a.err = err
			break
		}
		if x == nil {
			continue
		}
		a.seq++
		a.h.push(pending{x: x, seq: a.seq})
		if ts := x.Timing.RequestStart; ts > a.newest {
			a.newest = ts
		}
	}
	if len(a.h) == 0 {
		if a.err != nil {
			err := a.err
			a.err = nil
			return nil, err
		}
		return nil, io.EOF
	}
	x := a.h.pop().x
	a.t.Observe(x)
	return x, nil
}
