package replay

import (
	"sync"
	"testing"
	"time"
)

func TestHandoffOrderAndClose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max, n int
		slow   bool // the consumer sleeps between batches, so the producer fills the queue
	}{
		{"one slot", 1, 500, false},
		{"small", 7, 5000, false},
		{"full queue", 16, 2000, true},
		{"nothing", 4, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandoff[int](tc.max)
			go func() {
				for i := 0; i < tc.n; i++ {
					if !h.put(i, nil, nil) {
						t.Error("put refused")
						return
					}
				}
				h.close()
			}()
			var batch []int
			next, batches := 0, 0
			for {
				var more bool
				batch, more = h.take(batch)
				if !more {
					break
				}
				batches++
				if len(batch) == 0 || len(batch) > tc.max {
					t.Fatalf("batch of %d with max %d", len(batch), tc.max)
				}
				for _, v := range batch {
					if v != next {
						t.Fatalf("got %d, want %d", v, next)
					}
					next++
				}
				if tc.slow {
					time.Sleep(time.Millisecond)
				}
			}
			if next != tc.n {
				t.Fatalf("took %d items, want %d", next, tc.n)
			}
			if tc.slow && batches > tc.n/2 {
				t.Errorf("%d batches for %d items: a waiting consumer should take several at once", batches, tc.n)
			}
		})
	}
}

func TestHandoffPutStops(t *testing.T) {
	h := newHandoff[int](2)
	h.put(1, nil, nil)
	h.put(2, nil, nil)
	stop := make(chan struct{})
	res := make(chan bool)
	go func() { res <- h.put(3, stop, nil) }()
	select {
	case <-res:
		t.Fatal("put into a full queue returned before anything was taken")
	case <-time.After(20 * time.Millisecond):
	}
	close(stop)
	if <-res {
		t.Fatal("put after stop reported the item queued")
	}
	if b, _ := h.take(nil); len(b) != 2 {
		t.Fatalf("queue holds %v, want the two items put before", b)
	}
}

func TestSlots(t *testing.T) {
	for _, n := range []int{1, 2, 8, 100, 1024} {
		s := newSlots(n)
		for i := 0; i < n; i++ {
			if !s.acquire(nil, nil) {
				t.Fatal("acquire refused")
			}
		}
		got := make(chan struct{})
		go func() {
			s.acquire(nil, nil)
			close(got)
		}()
		batch := n - s.resume
		for i := 0; i < batch; i++ {
			select {
			case <-got:
				t.Fatalf("max %d: the waiter woke after %d releases, before the batch of %d", n, i, batch)
			case <-time.After(time.Millisecond):
			}
			s.release()
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("max %d: the waiter did not wake once %d slots were free", n, batch)
		}
		if batch < 1 || batch > 64 {
			t.Errorf("max %d: batch %d, want 1 to 64", n, batch)
		}
	}
}

// TestSlotsTryAcquire checks that tryAcquire takes what acquire would,
// never more than the maximum, and that a release frees one for it again.
func TestSlotsTryAcquire(t *testing.T) {
	for _, n := range []int{1, 3, 64} {
		s := newSlots(n)
		for i := range n {
			if !s.tryAcquire() {
				t.Fatalf("max %d: slot %d refused", n, i+1)
			}
		}
		if s.tryAcquire() {
			t.Fatalf("max %d: took a slot past the maximum", n)
		}
		s.release()
		if !s.tryAcquire() {
			t.Fatalf("max %d: the released slot refused", n)
		}
		if s.used != n {
			t.Errorf("max %d: %d used, want %d", n, s.used, n)
		}
	}
}

func TestSlotsStop(t *testing.T) {
	s := newSlots(1)
	s.acquire(nil, nil)
	stop := make(chan struct{})
	close(stop)
	if s.acquire(stop, nil) {
		t.Fatal("acquire on a stopped run took a slot")
	}
	s.release()
	if !s.acquire(nil, nil) {
		t.Fatal("a freed slot was not taken")
	}
}

// TestSlotsConcurrent has one taker (as the dispatcher is) start
// workers that each hold a slot for a moment and give it back from their
// own goroutine; the count in use never passes the maximum and every
// slot taken is given back.
func TestSlotsConcurrent(t *testing.T) {
	const limit, n = 16, 3000
	s := newSlots(limit)
	var mu sync.Mutex
	inUse, peak := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if !s.acquire(nil, nil) {
			t.Fatal("acquire refused")
		}
		mu.Lock()
		inUse++
		peak = max(peak, inUse)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%7 == 0 {
				time.Sleep(50 * time.Microsecond)
			}
			mu.Lock()
			inUse--
			mu.Unlock()
			s.release()
		}()
	}
	wg.Wait()
	if peak > limit {
		t.Fatalf("%d slots in use at once, max %d", peak, limit)
	}
	if s.used != 0 {
		t.Fatalf("%d slots still in use", s.used)
	}
}
