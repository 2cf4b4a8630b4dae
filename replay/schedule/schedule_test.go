package schedule

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// req is an entry for the tests: a name and its recorded facts.
type req struct {
	name string
	o    Order
}

func (r *req) Order() *Order { return &r.o }

func names(deps []*req) []string {
	var out []string
	for _, d := range deps {
		out = append(out, d.name)
	}
	slices.Sort(out)
	return out
}

func TestDeps(t *testing.T) {
	token := "TOKEN-0123456789"
	for _, tt := range []struct {
		name    string
		earlier []*req
		start   int64
		req     session.Request
		want    []string
	}{{
		// Nothing earlier: nothing to wait for.
		name: "first", start: 10,
	}, {
		// A sequential session waits for the one before it alone: the
		// one before waited in turn for its own predecessor.
		name:    "sequential",
		earlier: []*req{{"a", Order{Start: 0, End: 5}}, {"b", Order{Start: 6, End: 9}}},
		start:   10, want: []string{"b"},
	}, {
		// Requests that overlapped in the recording do not wait for each
		// other.
		name:    "overlap",
		earlier: []*req{{"a", Order{Start: 0, End: 20}}},
		start:   10,
	}, {
		// Completion exactly at the start counts as before it.
		name:    "touching",
		earlier: []*req{{"a", Order{Start: 0, End: 10}}},
		start:   10, want: []string{"a"},
	}, {
		// A request that never completed is waited for by nobody.
		name:    "no response",
		earlier: []*req{{"a", Order{Start: 0, End: 0}}},
		start:   10,
	}, {
		// Two that ran side by side and both completed before: the one
		// that started last, and the other because it was still running
		// when that one started.
		name:    "parallel pair",
		earlier: []*req{{"a", Order{Start: 0, End: 8}}, {"b", Order{Start: 2, End: 6}}},
		start:   10, want: []string{"a", "b"},
	}, {
		// The data edge: the clocks say the request started before the
		// login's response ended, but it carries a value that response
		// issued, so it waits for the login all the same.
		name:    "carries an issued value",
		earlier: []*req{{"login", Order{Start: 0, End: 10, Issued: []string{token}}}},
		start:   9, req: session.Request{Target: "/me", Header: session.Headers{{Name: "Authorization", Value: "Bearer " + token}}},
		want: []string{"login"},
	}, {
		// A value issued and not carried is no edge.
		name:    "issued, not carried",
		earlier: []*req{{"login", Order{Start: 0, End: 10, Issued: []string{token}}}},
		start:   9, req: session.Request{Target: "/me"},
	}, {
		// A request both rules name is waited for once.
		name:    "both rules",
		earlier: []*req{{"login", Order{Start: 0, End: 5, Issued: []string{token}}}},
		start:   9, req: session.Request{Target: "/orders?t=" + token},
		want: []string{"login"},
	}, {
		// The body carries values too.
		name:    "in the body",
		earlier: []*req{{"login", Order{Start: 0, End: 10, Issued: []string{token}}}},
		start:   9, req: session.Request{Target: "/x", Body: []byte(`{"t":"` + token + `"}`)},
		want: []string{"login"},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			got := names(Carrying(After(nil, tt.earlier, tt.start), tt.earlier, &tt.req)) // the rule: the time rule and the data edge
			if !slices.Equal(got, tt.want) {
				t.Errorf("deps %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRecordedEnd(t *testing.T) {
	for _, tt := range []struct {
		name string
		ex   session.Exchange
		want int64
	}{
		{"response end", session.Exchange{Timing: session.Timing{RequestStart: 1, RequestEnd: 2, ResponseStart: 3, ResponseEnd: 4}}, 4},
		{"no response end: the latest known", session.Exchange{Timing: session.Timing{RequestStart: 1, RequestEnd: 2}}, 2},
		{"no response at all", session.Exchange{Timing: session.Timing{RequestStart: 1, ResponseEnd: 4}, Flags: session.FlagNoResponse}, 0},
		{"no timing", session.Exchange{}, 0},
	} {
		if got := RecordedEnd(&tt.ex); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestSessionKey(t *testing.T) {
	if k := SessionKey(&session.Exchange{Session: "u1"}); k != "u1" {
		t.Errorf("recorded session: %q", k)
	}
	ex := &session.Exchange{}
	ex.Conn.ID = 7
	if k := SessionKey(ex); k != "conn:7" {
		t.Errorf("connection: %q", k)
	}
}

// scaleRamp reaches clone k at k seconds.
type scaleRamp struct{ top int }

func (s scaleRamp) ActiveFrom(k int) (time.Duration, bool) {
	return time.Duration(k) * time.Second, k < s.top
}

func TestClones(t *testing.T) {
	if got := CloneOffset(sec(1), 3, 50*time.Millisecond); got != sec(1.15) {
		t.Errorf("clone 3 at %v", got)
	}
	for _, tt := range []struct {
		name  string
		p     Pacer
		sr    ScaleRamp
		first time.Duration
		k     int
		want  bool
	}{
		{"no ramp: every clone", Speed(1), nil, 0, 5, true},
		{"clone 0 always", Speed(1), scaleRamp{1}, 0, 0, true},
		{"session begins before the ramp reaches the clone", Speed(1), scaleRamp{3}, sec(1), 2, false},
		{"session begins after", Speed(1), scaleRamp{3}, sec(2), 2, true},
		{"twice as fast, due earlier", Speed(2), scaleRamp{3}, sec(3), 2, false},
		{"never reached", Speed(1), scaleRamp{2}, sec(100), 2, false},
	} {
		if got := CloneActive(tt.p, tt.sr, tt.first, tt.k, 0); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// afterTwoPass is the time rule as first written, two passes over
// earlier: the reference After's one pass must agree with.
func afterTwoPass(earlier []*req, start int64) []*req {
	var last *req
	for _, e := range earlier {
		if Settled(&e.o, start) && (last == nil || e.o.Start > last.o.Start) {
			last = e
		}
	}
	if last == nil {
		return nil
	}
	deps := []*req{last}
	for _, e := range earlier {
		if e != last && Settled(&e.o, start) && e.o.End > last.o.Start {
			deps = append(deps, e)
		}
	}
	return deps
}

// TestAfterAgreesWithTwoPasses: on random sessions, short and long (past
// the candidates' room, so that they are pruned), in and out of start
// order, with ties and unfinished requests, After keeps exactly the
// requests, in the order, that the two-pass rule keeps.
func TestAfterAgreesWithTwoPasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		n := 1 + rng.IntN(8)
		if round%4 == 0 {
			n = 40 + rng.IntN(200)
		}
		earlier := make([]*req, n)
		for i := range earlier {
			s := int64(rng.IntN(400))
			if round%2 == 0 {
				s = int64(i*2 + rng.IntN(6)) // mostly in start order
			}
			e := &req{name: strconv.Itoa(i), o: Order{Start: s, End: s + 1 + int64(rng.IntN(60))}}
			if rng.IntN(10) == 0 {
				e.o.End = 0
			}
			earlier[i] = e
		}
		start := int64(rng.IntN(500))
		got, want := After(nil, earlier, start), afterTwoPass(earlier, start)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d, start %d: After %v, two passes %v", round, start, got, want)
		}
	}
}
