package corrplan

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestFifoValues: a fifoValues answers as the map and queue of keys it
// stands for, over puts (new and again), evictions and look-ups of keys
// crowded into few slots (small keys share their home slots).
func TestFifoValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keys   func(r *rand.Rand) vkey
		maxLen int
	}{
		{"random keys", func(r *rand.Rand) vkey { return vkey(r.Uint64()) }, 1024},
		{"crowded keys", func(r *rand.Rand) vkey { return vkey(r.IntN(3000)) * 64 }, 300},
		{"zero and one", func(r *rand.Rand) vkey { return vkey(r.IntN(2)) + vkey(r.IntN(50)<<8) }, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			var f fifoValues
			want := map[vkey]*origin{}
			var queue []vkey
			origins := []*origin{{"a", "x"}, {"b", "y"}}
			for step := range 200_000 {
				k := slotKey(tc.keys(r))
				o := origins[r.IntN(2)]
				_, had := want[k]
				if isNew := f.put(k, o); isNew == had {
					t.Fatalf("step %d: put(%x) new = %v, had = %v", step, k, isNew, had)
				}
				if !had {
					queue = append(queue, k)
				}
				want[k] = o
				for len(want) > tc.maxLen || len(want) > 0 && r.IntN(50) == 0 {
					f.evict()
					delete(want, queue[0])
					queue = queue[1:]
				}
				if f.len() != len(want) {
					t.Fatalf("step %d: len %d, want %d", step, f.len(), len(want))
				}
				probe := slotKey(tc.keys(r))
				got, ok := f.get(probe)
				if w, wok := want[probe]; ok != wok || got != w {
					t.Fatalf("step %d: get(%x) = %v %v, want %v %v", step, probe, got, ok, w, wok)
				}
			}
			for k, w := range want {
				if got, ok := f.get(k); !ok || got != w {
					t.Fatalf("get(%x) = %v %v, want %v", k, got, ok, w)
				}
			}
		})
	}
}

// TestIssueBodyAgain: a body issued again is skipped only when issuing it
// would change nothing: the tables, their order and the count of values
// let go of are those of issuing it once more, also when issuing it let
// go of some of its own values (more of them than a table holds, or one
// of them the oldest held before).
func TestIssueBodyAgain(t *testing.T) {
	o := &origin{"GET /list", "json:.items[*].id"}
	list := func(keys ...vkey) []issued {
		l := make([]issued, len(keys))
		for i, k := range keys {
			l[i] = issued{k, o}
		}
		return l
	}
	var big []vkey
	for i := range maxPerSession + 500 {
		big = append(big, vkey(1000+i))
	}
	for _, tc := range []struct {
		name  string
		held  []vkey // issued before, oldest first
		issue []issued
	}{
		{"more than a table holds", nil, list(big...)},
		{"its value the oldest held", big[:maxPerSession], list(big[0], 7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			skipped, again := NewBuilder(0), NewBuilder(0)
			var svs [2]*sessionValues
			bv := &bodyValues{list: tc.issue, ver: 1}
			for i, b := range []*Builder{skipped, again} {
				sv := &sessionValues{}
				for _, k := range tc.held {
					b.issue(sv, k, o)
				}
				b.issueBody(sv, tc.issue, bv)
				svs[i] = sv
			}
			skipped.issueBody(svs[0], tc.issue, bv)
			for _, is := range tc.issue {
				again.issue(svs[1], is.key, is.o)
			}
			for i, tab := range [][2]*fifoValues{{&svs[0].vals, &svs[1].vals}, {&skipped.recent, &again.recent}} {
				if got, want := tab[0].order[tab[0].head:], tab[1].order[tab[1].head:]; !reflect.DeepEqual(got, want) {
					t.Errorf("table %d holds %d values, issuing again %d (or in another order)", i, len(got), len(want))
				}
			}
			if skipped.forgotten != again.forgotten {
				t.Errorf("forgotten %d, issuing again %d", skipped.forgotten, again.forgotten)
			}
		})
	}
}
