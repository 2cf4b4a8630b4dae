package session

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The heap gives back what it was given in order, ties in any order, and
// keeps nothing alive in the slots it vacates.
func TestHeap(t *testing.T) {
	type item struct{ key, seq int }
	less := func(a, b *item) bool { return a.key < b.key }
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 10, 257} {
		var h []*item
		var keys []int
		for i := 0; i < n; i++ {
			k := rng.IntN(50)
			keys = append(keys, k)
			h = HeapPush(h, &item{key: k, seq: i}, less)
		}
		slices.Sort(keys)
		for i, want := range keys {
			var x *item
			x, h = HeapPop(h, less)
			if x.key != want {
				t.Fatalf("n=%d: pop %d = %d, want %d", n, i, x.key, want)
			}
			if len(h) != n-i-1 || h[:cap(h)][len(h)] != nil {
				t.Fatalf("n=%d: after pop %d: len %d, vacated slot %v", n, i, len(h), h[:cap(h)][len(h)])
			}
		}
	}
}

// Interleaved pushes and pops, as a reorder buffer does them, keep the order.
func TestHeapInterleaved(t *testing.T) {
	less := func(a, b int) bool { return a < b }
	rng := rand.New(rand.NewPCG(3, 4))
	var h []int
	var ref []int
	for i := 0; i < 2000; i++ {
		if len(h) == 0 || rng.IntN(3) > 0 {
			v := rng.IntN(1000)
			h = HeapPush(h, v, less)
			ref = append(ref, v)
			continue
		}
		var got int
		got, h = HeapPop(h, less)
		j := slices.Index(ref, slices.Min(ref))
		if got != ref[j] {
			t.Fatalf("step %d: pop %d, want %d", i, got, ref[j])
		}
		ref = slices.Delete(ref, j, j+1)
	}
}
