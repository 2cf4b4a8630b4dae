package replay

import "sync"

// The feeder, the dispatcher and the requests' goroutines hand work to
// each other through the two types below rather than through channels.
// At --speed max a channel woke the dispatcher for every completed
// request (a slot freed) and the feeder for every item taken (room in the
// channel): two goroutine switches per request, more than the engine's
// own work for it. Both wake a side only when it waits, and then only
// once there is a batch for it to do.

// handoff is a bounded FIFO from one producer to one consumer. The
// consumer takes everything queued at once; it is woken only when it
// waits on an empty queue. The producer, when the queue is full, waits
// until the consumer has taken the queue.
type handoff[T any] struct {
	mu       sync.Mutex
	items    []T
	max      int
	closed   bool
	waitTake bool          // the consumer waits for an item
	waitPut  bool          // the producer waits for room
	notEmpty chan struct{} // capacity 1
	notFull  chan struct{} // capacity 1
}

func newHandoff[T any](max int) *handoff[T] {
	return &handoff[T]{
		items:    make([]T, 0, max),
		max:      max,
		notEmpty: make(chan struct{}, 1),
		notFull:  make(chan struct{}, 1),
	}
}

// put queues v, waiting while the queue is full. It returns false, with v
// not queued, when stop or done closed first.
func (h *handoff[T]) put(v T, stop, done <-chan struct{}) bool {
	h.mu.Lock()
	for len(h.items) >= h.max {
		h.waitPut = true
		h.mu.Unlock()
		select {
		case <-h.notFull:
		case <-stop:
			return false
		case <-done:
			return false
		}
		h.mu.Lock()
	}
	h.items = append(h.items, v)
	wake := h.waitTake
	h.waitTake = false
	h.mu.Unlock()
	if wake {
		signal(h.notEmpty)
	}
	return true
}

// close tells the consumer that nothing more comes.
func (h *handoff[T]) close() {
	h.mu.Lock()
	h.closed = true
	wake := h.waitTake
	h.waitTake = false
	h.mu.Unlock()
	if wake {
		signal(h.notEmpty)
	}
}

// take returns every queued item, in order, waiting while there is none.
// spare is a slice the caller is done with (the last batch), reused for
// what comes next. ok is false once the queue is closed and empty.
func (h *handoff[T]) take(spare []T) (batch []T, ok bool) {
	clear(spare)
	h.mu.Lock()
	for len(h.items) == 0 {
		if h.closed {
			h.mu.Unlock()
			return spare[:0], false
		}
		h.waitTake = true
		h.mu.Unlock()
		<-h.notEmpty
		h.mu.Lock()
	}
	batch = h.items
	if cap(spare) < h.max {
		spare = make([]T, 0, h.max)
	}
	h.items = spare[:0]
	wake := h.waitPut
	h.waitPut = false
	h.mu.Unlock()
	if wake {
		signal(h.notFull)
	}
	return batch, true
}

// slots counts what is in use against a maximum, for one taker (the
// dispatcher) and any number of givers. A taker that finds none free waits until a batch is free again (an eighth of the maximum, at
// most 64), so that it is woken once per batch, not per release.
type slots struct {
	mu      sync.Mutex
	used    int
	max     int
	resume  int // a waiting taker is woken once used falls to this
	waiting bool
	free    chan struct{} // capacity 1
}

func newSlots(n int) *slots {
	return &slots{max: n, resume: n - min(64, max(1, n/8)), free: make(chan struct{}, 1)}
}

// acquire takes a slot, waiting while none is free. It returns false,
// with no slot taken, when stop or done closed first.
func (s *slots) acquire(stop, done <-chan struct{}) bool {
	s.mu.Lock()
	for s.used >= s.max {
		s.waiting = true
		s.mu.Unlock()
		select {
		case <-s.free:
		case <-stop:
			return false
		case <-done:
			return false
		}
		s.mu.Lock()
	}
	s.used++
	s.mu.Unlock()
	return true
}

// tryAcquire takes a slot if one is free, without waiting.
func (s *slots) tryAcquire() bool {
	s.mu.Lock()
	ok := s.used < s.max
	if ok {
		s.used++
	}
	s.mu.Unlock()
	return ok
}

// release gives a slot back.
func (s *slots) release() {
	s.mu.Lock()
	s.used--
	wake := s.waiting && s.used <= s.resume
	if wake {
		s.waiting = false
	}
	s.mu.Unlock()
	if wake {
		signal(s.free)
	}
}

// signal wakes the one waiter on c (capacity 1), or leaves the wake for
// it if it has yet to wait.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
