package corrplan

import (
	"math/rand/v2"
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
