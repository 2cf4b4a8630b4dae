package replay

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"slices"
	"strconv"
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
	// Sessions counts each session's requests, for WithSessionLengths;
	// nil unless the survey was asked for them (CountSessionLengths) and
	// could count them under the keys asked for.
	Sessions *SessionLengths
}

// SurveyOption asks SurveyRecording for more than it always collects.
type SurveyOption func(*surveyConfig)

type surveyConfig struct {
	keys session.SessionKeys // "" counts no sessions
}

// CountSessionLengths asks the survey to count each session's requests
// (Survey.Sessions) under the session keys the run will give them: keys
// resolved against the recording's metadata as the replay command
// resolves them (session.SessionKeys.Resolve). Recorded keys and
// connection keys are counted; recomputed keys are not (the identity
// tracker would cost the survey as much as the run's own), and those
// sessions are held for the idle limit as before. Only a recording's
// reader (session.Reader, MultiReader) is counted: a source made on the
// fly (an import) is not known to give the same keys when read again.
func CountSessionLengths(keys session.SessionKeys) SurveyOption {
	return func(c *surveyConfig) { c.keys = keys }
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
func SurveyRecording(ctx context.Context, src session.Source, opts ...SurveyOption) (*Survey, error) {
	var cfg surveyConfig
	for _, o := range opts {
		o(&cfg)
	}
	s := &Survey{Plan: corrplan.Stored(src)}
	var b *corrplan.Builder
	if s.Plan == nil {
		b, s.PlanComputed = corrplan.NewBuilder(0), true
	}
	var counts *countBuilder
	if md, ok := recordingMetadata(src); ok && cfg.keys != "" {
		switch cfg.keys.Resolve(md) {
		case session.KeysRecorded:
			counts = newCountBuilder(false)
		case session.KeysConnection:
			counts = newCountBuilder(true)
		}
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
			if counts != nil {
				counts.add(ex)
			}
		}
		if err := bt.err; err == io.EOF {
			if b != nil {
				s.Plan = b.Plan()
			}
			if counts != nil {
				s.Sessions = counts.done()
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

// recordingMetadata returns the metadata of src when it reads recording
// files (session.Reader, MultiReader), and false for any other source.
func recordingMetadata(src session.Source) ([]session.Metadata, bool) {
	switch rd := src.(type) {
	case *session.MultiReader:
		return rd.Metadata(), true
	case *session.Reader:
		return []session.Metadata{rd.Metadata()}, true
	}
	return nil, false
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
	readInto, reuse := session.ReadInto(src)
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
				bt.err = readInto(bt.exs[bt.n])
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

// SessionLengths is how many requests each session of a recording has,
// for the replay to release a session's state once its last request has
// completed (WithSessionLengths) rather than after the idle limit: with
// a recording of many short sessions (every HTTP/2 stream one, as
// h2load's; a browser's many), the sessions held for the limit were most
// of the replay's heap, and the collector's work.
//
// It is compact by design: 12 bytes a session, the sessions' keys hashed
// to 64 bits (hash/maphash, with a seed of its own) and sorted, and at
// most maxCountedSessions of them. Two keys that hash alike share the sum
// of their counts, which neither reaches alone: a collision can only make
// a session be held longer, never released while it may still get a
// request. A session past the cap has no count, and is held for the idle
// limit.
type SessionLengths struct {
	seed   maphash.Seed
	hashes []uint64 // sorted
	counts []uint32 // counts[i] is hashes[i]'s; math.MaxUint32 when it overflowed
	// first[b] is the first of hashes whose top bits are b, and
	// first[b+1] the end of them: a look-up searches a few hashes, not
	// all. A binary search over 200,000 of them missed the cache at
	// most of its 18 steps: 3% of a replay's CPU.
	first []uint32
	shift uint // 64 less the bits of b
}

// maxCountedSessions bounds SessionLengths (6.5 MiB with its index) and
// the map that builds it (18 MiB at the cap, during the survey alone).
const maxCountedSessions = 1 << 19

// Requests returns the number of requests the session keyed key (the
// recording's key, not a clone's) has, and false when it is not known.
func (c *SessionLengths) Requests(key string) (n uint32, ok bool) {
	if c == nil {
		return 0, false
	}
	h := maphash.String(c.seed, key)
	b := h >> c.shift
	lo, hi := c.first[b], c.first[b+1]
	i, found := slices.BinarySearch(c.hashes[lo:hi], h)
	if !found || c.counts[int(lo)+i] == math.MaxUint32 {
		return 0, false
	}
	return c.counts[int(lo)+i], true
}

// Len is the number of sessions counted (keys that hash alike once).
func (c *SessionLengths) Len() int {
	if c == nil {
		return 0
	}
	return len(c.hashes)
}

// countBuilder counts requests by session during the survey.
type countBuilder struct {
	seed   maphash.Seed
	byConn bool // every connection is a session (session.KeysConnection)
	n      map[uint64]uint32
	h      maphash.Hash
	buf    [20]byte
}

func newCountBuilder(byConn bool) *countBuilder {
	b := &countBuilder{seed: maphash.MakeSeed(), byConn: byConn, n: make(map[uint64]uint32)}
	b.h.SetSeed(b.seed)
	return b
}

// add counts ex under the key schedule.SessionKey gives it (after
// session.WithoutSessions when by connection), hashed without making
// the key "conn:<id>" a string.
func (b *countBuilder) add(ex *session.Exchange) {
	var k uint64
	if ex.Session != "" && !b.byConn {
		k = maphash.String(b.seed, ex.Session)
	} else {
		b.h.Reset()
		b.h.WriteString("conn:")
		b.h.Write(strconv.AppendUint(b.buf[:0], ex.Conn.ID, 10))
		k = b.h.Sum64()
	}
	n, ok := b.n[k]
	switch {
	case ok:
		if n < math.MaxUint32 {
			b.n[k] = n + 1
		}
	case len(b.n) < maxCountedSessions:
		b.n[k] = 1
	}
	// Past the cap a new key is not counted at all: its hash, absent,
	// can be no other key's.
}

// done returns the counts, sorted by hash.
func (b *countBuilder) done() *SessionLengths {
	c := &SessionLengths{seed: b.seed, hashes: make([]uint64, 0, len(b.n)), counts: make([]uint32, len(b.n))}
	for k := range b.n {
		c.hashes = append(c.hashes, k)
	}
	slices.Sort(c.hashes)
	for i, k := range c.hashes {
		c.counts[i] = b.n[k]
	}
	b.n = nil
	// About four hashes to a bucket.
	bits := uint(1)
	for len(c.hashes)>>(bits+2) > 0 && bits < 20 {
		bits++
	}
	c.shift = 64 - bits
	c.first = make([]uint32, 1<<bits+1)
	i := 0
	for bk := range c.first {
		for i < len(c.hashes) && c.hashes[i]>>c.shift < uint64(bk) {
			i++
		}
		c.first[bk] = uint32(i)
	}
	return c
}
