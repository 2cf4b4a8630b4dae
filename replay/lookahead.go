package replay

// lookahead is the feeder's look-ahead window: items by offset, then by
// the order they were read, as itemHeap orders them. A recording comes
// nearly in order (exchanges are written as they complete, so only one
// that outlasted a later one comes late), and a heap of a whole window,
// up to its bound in exchanges, cost a cache miss per level on every pop: a
// twentieth of a request's cost at --speed max. Items that come in order
// queue in a slice; only those that come before the last one queued go
// to a heap, and the earliest is the smaller of the two heads.
type lookahead struct {
	run  []*item // in order; run[head:] are queued
	head int
	late itemHeap
}

// before is itemHeap's order.
func before(a, b *item) bool {
	if a.offset != b.offset {
		return a.offset < b.offset
	}
	return a.seq < b.seq
}

func (q *lookahead) Len() int { return len(q.run) - q.head + len(q.late) }

func (q *lookahead) push(it *item) {
	if n := len(q.run); n == q.head || !before(it, q.run[n-1]) {
		q.run = append(q.run, it)
		return
	}
	q.late.push(it)
}

// fromLate reports whether the earliest item is the heap's.
func (q *lookahead) fromLate() bool {
	if q.head == len(q.run) {
		return true
	}
	return len(q.late) > 0 && before(q.late[0], q.run[q.head])
}

// peek returns the earliest item; the window must not be empty.
func (q *lookahead) peek() *item {
	if q.fromLate() {
		return q.late[0]
	}
	return q.run[q.head]
}

// pop removes and returns the earliest item; the window must not be
// empty.
func (q *lookahead) pop() *item {
	if q.fromLate() {
		return q.late.pop()
	}
	it := q.run[q.head]
	q.run[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.run):
		q.run, q.head = q.run[:0], 0
	case q.head >= 1024 && q.head*2 >= len(q.run):
		// Move the queued half down, so that the slice does not grow
		// with the recording: each item moves at most once per halving.
		n := copy(q.run, q.run[q.head:])
		clear(q.run[n:])
		q.run, q.head = q.run[:n], 0
	}
	return it
}
