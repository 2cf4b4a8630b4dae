package replay

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/reprise-tool/reprise/replay/schedule"
)

// A data edge to a request that one of deps waits for by the time rule
// is left out; one to a request still running when deps started, or
// dispatched after them, is kept.
func TestUnimplied(t *testing.T) {
	mk := func(seq uint64, start, end int64, issued ...string) *pending {
		p := &pending{seq: seq}
		p.rec.Start, p.rec.End, p.rec.Issued = start, end, issued
		return p
	}
	login := mk(1, 0, 10, "tok-1")   // issued a token
	api := mk(2, 20, 30)             // after the login: waits for it
	overlap := mk(3, 5, 40, "tok-2") // ran while api started
	unended := mk(4, 25, 0, "tok-3") // no recorded end
	later := mk(5, 50, 60, "tok-4")  // dispatched after api
	tests := []struct {
		name        string
		outstanding []*pending
		deps        []*pending
		want        []*pending
	}{
		{"implied by the time rule", []*pending{login, api}, []*pending{api}, nil},
		{"a dep itself", []*pending{login}, []*pending{login}, nil},
		{"no deps", []*pending{login, api}, nil, []*pending{login}},
		{"still running", []*pending{login, overlap, api}, []*pending{api}, []*pending{overlap}},
		{"no end", []*pending{login, api, unended}, []*pending{api}, []*pending{unended}},
		{"dispatched later", []*pending{api, later}, []*pending{api}, []*pending{later}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unimplied(nil, tt.outstanding, tt.deps); !slices.Equal(got, tt.want) {
				t.Errorf("unimplied = %v, want %v", got, tt.want)
			}
		})
	}
}

// sessState.after finds what schedule.After does, whatever the order the
// requests of a session start, end and complete in.
func TestSessAfter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		ss := &sessState{}
		var start int64
		for seq := uint64(1); seq <= 40; seq++ {
			start += rng.Int64N(10)
			p := &pending{seq: seq}
			p.rec.Start = start
			if rng.IntN(10) > 0 { // a request with no recorded end now and then
				p.rec.End = start + rng.Int64N(30)
			}
			want := schedule.After(nil, ss.outstanding, start)
			got := ss.after(nil, start)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, request %d: after = %v, want %v", round, seq, got, want)
			}
			ss.outstanding = append(ss.outstanding, p)
			for len(ss.outstanding) > 0 && rng.IntN(3) == 0 { // some complete, in any order
				q := ss.outstanding[rng.IntN(len(ss.outstanding))]
				(&Replayer{}).complete(ss, q)
			}
		}
	}
}
