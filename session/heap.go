package session

// HeapPush adds x to h, a binary min-heap ordered by less, and returns the
// heap. HeapPush and HeapPop are container/heap's algorithms on a typed
// slice: container/heap's interface calls and the boxing of every element
// into an interface value cost the hot loops that keep exchanges, packets
// or pending requests in time order (capture's reorder buffer, the pcap
// file merge, the identity annotator) a noticeable share of their time.
func HeapPush[S ~[]E, E any](h S, x E, less func(a, b E) bool) S {
	h = append(h, x)
	i := len(h) - 1
	for i > 0 {
		up := (i - 1) / 2
		if !less(h[i], h[up]) {
			break
		}
		h[i], h[up] = h[up], h[i]
		i = up
	}
	return h
}

// HeapPop removes the least element of h, a non-empty heap made by
// HeapPush with the same less, and returns it and the heap. The vacated
// slot is zeroed so the heap keeps nothing alive.
func HeapPop[S ~[]E, E any](h S, less func(a, b E) bool) (E, S) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	var zero E
	h[n] = zero
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(h[r], h[l]) {
			m = r
		}
		if !less(h[m], h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return top, h
}
