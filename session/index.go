package session

import (
	"hash/crc32"
)

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Index is the trailer a Writer adds at Close: totals and a block map that
// let a tool describe a recording without reading it all. It is never
// required: a file without one (a killed writer, WithoutIndex) reads the
// same, and everything in it can be recomputed from the records.
type Index struct {
	Exchanges uint64 `json:"exchanges"`
	Timelines uint64 `json:"timelines"`
	// First and Last are the earliest and latest Timing.RequestStart, in
	// Unix nanoseconds.
	First int64 `json:"first"`
	Last  int64 `json:"last"`
	// Sessions counts distinct non-empty Exchange.Session keys; when
	// SessionsCapped is set there were more than the writer tracks and
	// Sessions is a lower bound.
	Sessions       uint64            `json:"sessions"`
	SessionsCapped bool              `json:"sessions_capped,omitempty"`
	Methods        map[string]uint64 `json:"methods,omitempty"`
	Statuses       map[int]uint64    `json:"statuses,omitempty"`
	TokenEvents    map[string]uint64 `json:"token_events,omitempty"`
	Truncated      uint64            `json:"truncated"`  // exchanges with a body cut to the cap
	Incomplete     uint64            `json:"incomplete"` // exchanges with Flags.Incomplete()
	Blocks         []BlockRef        `json:"blocks,omitempty"`
}

// BlockRef locates one block of exchanges in the file.
type BlockRef struct {
	Offset  int64 `json:"offset"`  // of the block's sync marker
	Records int   `json:"records"` // records in the block
	First   int64 `json:"first"`   // earliest RequestStart in the block, 0 if it holds no exchange
	Last    int64 `json:"last"`    // latest RequestStart in the block
}

// maxIndexSessions bounds the session set a Writer keeps for the index.
const maxIndexSessions = 1 << 17

// maxIndexKeys bounds the methods a Writer counts separately; more are
// counted as "OTHER", so garbage methods cannot grow the index.
const maxIndexKeys = 64

type indexBuilder struct {
	Index
	end      int64
	sessions map[string]struct{}
}

func newIndexBuilder() indexBuilder {
	return indexBuilder{
		Index:    Index{Methods: map[string]uint64{}, Statuses: map[int]uint64{}, TokenEvents: map[string]uint64{}},
		sessions: map[string]struct{}{},
	}
}

func (b *indexBuilder) add(ex *Exchange, bodyCap int) {
	ts := ex.Timing.RequestStart
	if b.Exchanges == 0 || ts < b.First {
		b.First = ts
	}
	b.Last = max(b.Last, ts)
	b.end = max(b.end, ts, ex.Timing.ResponseEnd)
	b.Exchanges++
	m := ex.Request.Method
	if _, ok := b.Methods[m]; !ok && len(b.Methods) >= maxIndexKeys {
		m = "OTHER"
	}
	b.Methods[m]++
	if _, ok := b.Statuses[ex.Response.Status]; ok || len(b.Statuses) < 1000 {
		b.Statuses[ex.Response.Status]++
	}
	for i, t := range ex.Tokens {
		if kindSeen(ex.Tokens[:i], t.Kind) {
			continue // a login that issues three tokens is one login
		}
		k := string(t.Kind)
		if _, ok := b.TokenEvents[k]; !ok && len(b.TokenEvents) >= maxIndexKeys {
			k = "other"
		}
		b.TokenEvents[k]++
	}
	// The writer truncates bodies itself; count what it will have flagged.
	if ex.Flags&(FlagRequestTruncated|FlagResponseTruncated) != 0 || len(ex.Request.Body) > bodyCap || len(ex.Response.Body) > bodyCap {
		b.Truncated++
	}
	if ex.Flags.Incomplete() {
		b.Incomplete++
	}
	if ex.Session != "" {
		if _, ok := b.sessions[ex.Session]; !ok {
			if len(b.sessions) < maxIndexSessions {
				b.sessions[ex.Session] = struct{}{}
			} else {
				b.SessionsCapped = true
			}
		}
	}
}

func (b *indexBuilder) block(r BlockRef) { b.Blocks = append(b.Blocks, r) }

func (b *indexBuilder) index() *Index {
	ix := b.Index
	ix.Sessions = uint64(len(b.sessions))
	return &ix
}

// kindSeen reports whether evs holds an event of kind k. Token event counts
// are of exchanges, once per kind, so that a login that issued an access
// token, a refresh token and a cookie counts as one login.
func kindSeen(evs []TokenEvent, k TokenEventKind) bool {
	for _, e := range evs {
		if e.Kind == k {
			return true
		}
	}
	return false
}

// KindSeen is kindSeen for readers of recordings that count token events
// the way the index does.
func KindSeen(evs []TokenEvent, k TokenEventKind) bool { return kindSeen(evs, k) }
