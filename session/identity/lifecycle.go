package identity

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/reprise-tool/reprise/session"
)

// This file holds a session's life in the tracker: opening, touching,
// events, ending, sweeping idle sessions, and handing out timelines.

// start opens a new session for x.
func (t *Tracker) start(x *session.Exchange, via string) *state {
	t.seq++
	t.stats.Sessions++
	s := &state{}
	s.tl.Key = fmt.Sprintf("s-%06d", t.seq)
	s.tl.Via = via
	s.tl.Start = x.Timing.RequestStart
	t.active[s.tl.Key] = s
	return s
}

// fallback applies the connection and client rules, in order.
func (t *Tracker) fallback(x *session.Exchange) *state {
	for _, r := range t.o.rules {
		switch r.Kind {
		case RuleConnection:
			if s := live(t.conns[x.Conn.ID], x.Timing.RequestStart); s != nil {
				return s
			}
			s := t.start(x, "connection")
			s.conn, s.cid = true, x.Conn.ID
			t.conns[x.Conn.ID] = s
			return s
		case RuleClient:
			a := x.Conn.Client.Addr()
			if !a.IsValid() {
				continue
			}
			if s := live(t.clients[a], x.Timing.RequestStart); s != nil {
				return s
			}
			s := t.start(x, "client")
			s.cli, s.addr = true, a
			t.clients[a] = s
			return s
		}
	}
	return nil
}

// touch counts x in s.
func (t *Tracker) touch(s *state, x *session.Exchange) {
	s.tl.Exchanges++
	if x.Timing.RequestStart < s.tl.Start || s.tl.Start == 0 {
		s.tl.Start = x.Timing.RequestStart
	}
	if e := endTime(x); e > s.tl.End {
		s.tl.End = e
	}
	if x.Timing.RequestStart > s.lastSeen {
		s.lastSeen = x.Timing.RequestStart
	}
	if x.Response.Status == 401 {
		s.tl.Rejected++
	}
}

// event records ev on x and on s's timeline.
//
// A timeline keeps every login, refresh and logout, but at most
// maxMinorEvents issue and rejected events: a framework that rotates its
// session cookie on every response (or a client that keeps sending a dead
// token) would otherwise make an open session's memory grow with its
// requests. The exchanges keep every event.
func (t *Tracker) event(s *state, x *session.Exchange, ev session.TokenEvent) {
	x.Tokens = append(x.Tokens, ev)
	if ev.Kind == session.TokenIssue || ev.Kind == session.TokenRejected {
		if s.minor >= maxMinorEvents {
			return
		}
		s.minor++
	}
	s.tl.Events = append(s.tl.Events, session.TimelineEvent{At: x.Timing.RequestStart, Index: s.tl.Exchanges - 1, Event: ev})
}

// maxMinorEvents bounds the issue and rejected events a timeline keeps.
const maxMinorEvents = 256

// end marks s as logged out; it is closed once traffic moves past the
// logout, so that requests already under way still find it.
func (t *Tracker) end(s *state, x *session.Exchange) {
	s.tl.Logouts++
	s.tl.EndedBy = "logout"
	s.endedAt = endTime(x)
}

// sweep closes logged-out sessions that traffic has moved past and
// sessions idle for longer than the idle timeout. It runs at most eight
// times per idle period of traffic time, so its cost is spread thin.
func (t *Tracker) sweep() {
	step := int64(t.o.idle) / 8
	if t.now-t.lastSweep < step {
		return
	}
	t.lastSweep = t.now
	for _, s := range t.active {
		switch {
		case s.endedAt != 0 && t.now > s.endedAt:
			t.close(s)
		case t.now-s.lastSeen > int64(t.o.idle):
			s.tl.EndedBy = "idle"
			t.stats.IdleClosed++
			t.close(s)
		}
	}
}

// close forgets s's state and keeps its timeline.
func (t *Tracker) close(s *state) {
	for _, k := range s.keys {
		if t.index[k] == s {
			delete(t.index, k)
		}
	}
	if s.conn && t.conns[s.cid] == s {
		delete(t.conns, s.cid)
	}
	if s.cli && t.clients[s.addr] == s {
		delete(t.clients, s.addr)
	}
	delete(t.active, s.tl.Key)
	t.finished = append(t.finished, s.tl)
}

// Active returns how many sessions hold state now.
func (t *Tracker) Active() int { return len(t.active) }

// Timelines returns the timelines of every session seen so far and not
// yet taken by TakeFinished, closed and open alike, ordered by start time
// and key. Open sessions appear as they stand; they are not closed.
func (t *Tracker) Timelines() []session.Timeline {
	out := make([]session.Timeline, 0, len(t.finished)+len(t.active))
	out = append(out, t.finished...)
	for _, s := range t.active {
		out = append(out, s.tl)
	}
	sortTimelines(out)
	return out
}

// TakeFinished returns the timelines of sessions closed since the last
// call and forgets them, so a long capture can write them out as it goes
// and keep memory bounded by active sessions.
func (t *Tracker) TakeFinished() []session.Timeline {
	out := t.finished
	t.finished = nil
	sortTimelines(out)
	return out
}

// Close closes every open session (as open: EndedBy stays "" unless it
// logged out) and returns all timelines not yet taken.
func (t *Tracker) Close() []session.Timeline {
	for _, s := range t.active {
		t.close(s)
	}
	return t.TakeFinished()
}

// TimelineWriter is the part of a recording writer that stores session
// timelines; session.FileWriter has it.
type TimelineWriter interface {
	WriteTimeline(*session.Timeline) error
}

// WriteFinished writes the timelines of sessions closed so far to w and
// forgets them, so a long capture keeps memory bounded by active
// sessions. With final set it first closes every open session, as at the
// end of a capture.
func (t *Tracker) WriteFinished(w TimelineWriter, final bool) error {
	var tls []session.Timeline
	if final {
		tls = t.Close()
	} else {
		tls = t.TakeFinished()
	}
	for i := range tls {
		if err := w.WriteTimeline(&tls[i]); err != nil {
			return fmt.Errorf("write timeline of session %s: %w", tls[i].Key, err)
		}
	}
	return nil
}

func sortTimelines(tl []session.Timeline) {
	slices.SortFunc(tl, func(a, b session.Timeline) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
}

// respTime is when the server answered: the first response byte, or the
// best earlier time known.
func respTime(x *session.Exchange) int64 {
	for _, v := range []int64{x.Timing.ResponseStart, x.Timing.RequestEnd, x.Timing.RequestStart} {
		if v != 0 {
			return v
		}
	}
	return 0
}

// endTime is when the exchange completed, or the best earlier time known.
func endTime(x *session.Exchange) int64 {
	for _, v := range []int64{x.Timing.ResponseEnd, x.Timing.ResponseStart, x.Timing.RequestEnd, x.Timing.RequestStart} {
		if v != 0 {
			return v
		}
	}
	return 0
}
