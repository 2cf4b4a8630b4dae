// Package schedule is a replay's schedule as arithmetic: when each request
// is due (its recorded offset under a Pacer) and which earlier requests of
// its session it waits for (the order rule). It opens no socket and reads
// no clock, so the engine (package replay) and the planner (package
// replay/check) run the same rule, and a prediction is the schedule the
// engine really runs.
//
// # The order rule
//
// For every session:
//
//	A request is not sent until every request of its session that had
//	completed before it started, in the recording, has completed in the
//	replay. Requests that overlapped in the recording may overlap in the
//	replay. Sessions are independent of each other.
//
// "Completed" is the response's last byte, "started" the request's first
// byte (see RecordedEnd). A recorded request that never got a response
// never completed, so nothing waits for it. One addition makes the rule
// robust to clocks: a request that carries a value that an earlier
// request's recorded response issued also waits for that request, whatever
// the timestamps say (Carrying); a recording proxy may stamp the next
// request of a connection microseconds before the end of the response that
// came first.
package schedule

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// Order is what the order rule reads of one recorded request.
type Order struct {
	Start int64 // request start, Unix ns (or any clock shared by the session)
	End   int64 // response end on the same clock; 0 when it never completed
	// Issued holds the values its recorded response issued (see
	// correlate.IssuedFields); nil when it issued none.
	Issued []string
}

// Entry is an earlier request the rule may make a request wait for: the
// engine's in-flight requests, the planner's simulated ones. Entries are
// compared by identity.
type Entry interface {
	comparable
	// Order returns the entry's recorded facts; it is called often and
	// must not allocate.
	Order() *Order
}

// Settled reports whether a request with order o completed, in the
// recording, at or before start: a request starting at start waits for it.
func Settled(o *Order, start int64) bool { return o.End != 0 && o.End <= start }

// After appends to deps the earlier requests that completed (in the
// recording) at or before start. It appends the fewest that imply the
// rest: among them, the one that started last (B) depends in turn on every
// one that completed before B started, so only B and those that were still
// running when B started are kept. A sequential session thus waits for one
// request per request, however far ahead the schedule runs.
func After[E Entry](deps, earlier []E, start int64) []E {
	// One pass: the last to start among the settled, and the settled that
	// may still have been running when it started (each ended after the
	// last one known then started; filtered again at the end against the
	// last one of all). A session with many requests in flight reads each
	// one's Order once, not twice.
	var last E
	var lastOrder *Order
	lastAt := -1
	var buf [64]candidate
	cand := buf[:0]
	for i, e := range earlier {
		o := e.Order()
		if !Settled(o, start) {
			continue
		}
		switch {
		case lastOrder == nil:
		case o.Start > lastOrder.Start:
			if lastOrder.End > o.Start {
				cand = addCandidate(cand, candidate{lastAt, lastOrder.End}, o.Start)
			}
		default:
			if o.End > lastOrder.Start {
				cand = addCandidate(cand, candidate{i, o.End}, lastOrder.Start)
			}
			continue
		}
		last, lastOrder, lastAt = e, o, i
	}
	if lastOrder == nil {
		return deps
	}
	deps = append(slices.Grow(deps, 1+len(cand)), last) // one allocation at most
	if !slices.IsSortedFunc(cand, compareCandidates) {  // a last replaced came after later ones
		slices.SortFunc(cand, compareCandidates)
	}
	for _, c := range cand {
		if e := earlier[c.at]; e != last && c.end > lastOrder.Start {
			deps = append(deps, e)
		}
	}
	return deps
}

// candidate is a request After may keep: its index in earlier and its
// recorded end.
type candidate struct {
	at  int
	end int64
}

func compareCandidates(a, b candidate) int { return a.at - b.at }

// addCandidate appends c to cand. When cand is full it first drops those
// that ended by since (the start of the last so far: they can no longer
// qualify), and makes room for as many again as it keeps, so that a
// session with many overlapping requests costs no more than one pass.
func addCandidate(cand []candidate, c candidate, since int64) []candidate {
	if len(cand) == cap(cand) {
		kept := cand[:0]
		for _, k := range cand {
			if k.end > since {
				kept = append(kept, k)
			}
		}
		if len(kept) > cap(cand)/2 {
			kept = slices.Grow(kept, len(kept))
		}
		cand = kept
	}
	return append(cand, c)
}

// Carrying appends to deps the earlier requests, not in deps already,
// whose recorded response issued a value that req carries (in its target,
// a header value or its body). Such a request cannot have started before
// that response arrived, whatever the timestamps say.
func Carrying[E Entry](deps, earlier []E, req *session.Request) []E {
	var hay string
	for _, e := range earlier {
		o := e.Order()
		if len(o.Issued) == 0 || slices.Contains(deps, e) {
			continue
		}
		if hay == "" {
			hay = RequestText(req)
		}
		if Carries(hay, o.Issued) {
			deps = append(deps, e)
		}
	}
	return deps
}

// Carries reports whether text (see RequestText) holds one of issued.
func Carries(text string, issued []string) bool {
	for _, v := range issued {
		if strings.Contains(text, v) {
			return true
		}
	}
	return false
}

// RequestText is everything of a request a value could be carried in.
func RequestText(r *session.Request) string {
	var b strings.Builder
	b.WriteString(r.Target)
	for _, h := range r.Header {
		b.WriteByte('\n')
		b.WriteString(h.Value)
	}
	b.WriteByte('\n')
	b.Write(r.Body)
	return b.String()
}

// SessionKey is the exchange's session, or its connection ("conn:<id>")
// when the identity tracker left none.
func SessionKey(ex *session.Exchange) string {
	if ex.Session != "" {
		return ex.Session
	}
	return "conn:" + strconv.FormatUint(ex.Conn.ID, 10)
}

// RecordedEnd is when the recorded exchange completed, 0 if it never did:
// the response's last byte, or the latest moment the recording knows of.
func RecordedEnd(ex *session.Exchange) int64 {
	if ex.Flags&session.FlagNoResponse != 0 {
		return 0
	}
	t := ex.Timing
	for _, v := range [...]int64{t.ResponseEnd, t.ResponseStart, t.RequestEnd, t.RequestStart} {
		if v != 0 {
			return v
		}
	}
	return 0
}

// CloneOffset is where clone k (from 0) of a request recorded at offset
// sits on the recording's timeline: shifted by k*stagger, so that the
// clones' logins do not land on one instant.
func CloneOffset(offset time.Duration, k int, stagger time.Duration) time.Duration {
	return offset + time.Duration(k)*stagger
}

// ScaleRamp says from when each clone takes part (a *ramp.Ramp of scale
// stages is one).
type ScaleRamp interface {
	// ActiveFrom returns the wall time from which clone k takes part; ok
	// is false for a clone the ramp never reaches.
	ActiveFrom(k int) (at time.Duration, ok bool)
}

// CloneActive reports whether clone k of a session whose first request
// is recorded at first takes part under the scale ramp sr (nil: every
// clone does): only if the session begins once the ramp has reached the
// clone, so raising the scale adds whole sessions, never cut ones.
func CloneActive(p Pacer, sr ScaleRamp, first time.Duration, k int, stagger time.Duration) bool {
	if k == 0 || sr == nil {
		return true
	}
	from, ok := sr.ActiveFrom(k)
	return ok && p.Due(CloneOffset(first, k, stagger)) >= from
}
