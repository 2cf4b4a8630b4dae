package replay

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The look-ahead window gives items back in itemHeap's order whatever
// order they come in, also when pushes and pops interleave as the feeder
// does them.
func TestLookaheadOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	offsets := map[string]func(i, n int) int{
		"in order":        func(i, n int) int { return i },
		"reversed":        func(i, n int) int { return n - i },
		"random":          func(i, n int) int { return rng.IntN(n) },
		"equal":           func(i, n int) int { return 7 },
		"mostly in order": func(i, n int) int { return i - rng.IntN(3)*rng.IntN(50)*(i%17/16) },
		"steps":           func(i, n int) int { return i / 100 },
	}
	for name, offset := range offsets {
		for _, n := range []int{0, 1, 2, 100, 5000} {
			for _, keep := range []int{0, 10, 1 << 30} { // pop whenever more than keep are queued
				var (
					q     lookahead
					h     itemHeap
					all   []*item
					got   []*item
					fromH []*item
				)
				for i := 0; i < n; i++ {
					it := &item{offset: time.Duration(offset(i, n)), seq: uint64(i)}
					all = append(all, it)
					q.push(it)
					h.push(it)
					for q.Len() > keep {
						if q.peek() != h[0] {
							t.Fatalf("%s n=%d keep=%d: peek differs from the heap's", name, n, keep)
						}
						got, fromH = append(got, q.pop()), append(fromH, h.pop())
					}
				}
				for q.Len() > 0 {
					got, fromH = append(got, q.pop()), append(fromH, h.pop())
				}
				if !slices.Equal(got, fromH) || len(got) != n {
					t.Fatalf("%s n=%d keep=%d: order differs from the heap's", name, n, keep)
				}
				if keep == 1<<30 { // popped all at the end: fully sorted
					slices.SortFunc(all, func(a, b *item) int {
						if before(a, b) {
							return -1
						}
						return 1
					})
					if !slices.Equal(got, all) {
						t.Fatalf("%s n=%d: not sorted", name, n)
					}
				}
			}
		}
	}
}
