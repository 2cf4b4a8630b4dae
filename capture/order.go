package capture

import (
	"math"

	"github.com/reprise-tool/reprise/session"
)

// orderer puts finished exchanges in RequestStart order.
//
// Exchanges finish out of order (a slow response finishes after faster ones
// that started later), but downstream session tracking wants time order.
// Every started request is remembered in the order it started; a finished
// exchange is held until no request that started before it is still in
// flight. A request in flight for longer than the window (in packet time),
// or while more than maxHeld exchanges wait, stops holding the others back:
// it is emitted when it finishes, late and out of order. Memory is bounded
// by the requests in flight and the exchanges finished within the window.
type orderer struct {
	window  int64
	maxHeld int
	flights map[*session.Exchange]*flight
	fifo    []*flight // started requests, oldest first; done ones are popped lazily
	head    int
	held    exHeap
	out     []*session.Exchange
	outHead int
}

type flight struct {
	start      int64
	done, late bool
}

func newOrderer(window int64, maxHeld int) *orderer {
	return &orderer{window: window, maxHeld: maxHeld, flights: make(map[*session.Exchange]*flight)}
}

func (o *orderer) started(x *session.Exchange) {
	f := &flight{start: x.Timing.RequestStart}
	o.flights[x] = f
	o.fifo = append(o.fifo, f)
}

// finished takes a finished exchange; keep is false for a dropped one.
func (o *orderer) finished(x *session.Exchange, keep bool) {
	f, ok := o.flights[x]
	if ok {
		delete(o.flights, x)
		f.done = true
	}
	if !keep {
		return
	}
	if !ok || f.late || o.window == 0 {
		o.out = append(o.out, x)
		return
	}
	o.held.push(x)
}

// advance releases what may go out, given the packet clock now.
func (o *orderer) advance(now int64) {
	for o.head < len(o.fifo) {
		f := o.fifo[o.head]
		if !f.done && now-f.start <= o.window && len(o.held) <= o.maxHeld {
			break
		}
		if !f.done {
			f.late = true
		}
		o.fifo[o.head] = nil
		o.head++
	}
	if o.head == len(o.fifo) {
		o.fifo, o.head = o.fifo[:0], 0
	} else if o.head > 1024 && o.head*2 > len(o.fifo) {
		n := copy(o.fifo, o.fifo[o.head:])
		clear(o.fifo[n:])
		o.fifo, o.head = o.fifo[:n], 0
	}
	mark := int64(math.MaxInt64)
	if o.head < len(o.fifo) {
		mark = o.fifo[o.head].start
	}
	for len(o.held) > 0 && o.held[0].Timing.RequestStart <= mark {
		o.out = append(o.out, o.held.pop())
	}
}

// drain releases everything held, for the end of the capture.
func (o *orderer) drain() {
	for len(o.held) > 0 {
		o.out = append(o.out, o.held.pop())
	}
}

func (o *orderer) pop() *session.Exchange {
	if o.outHead == len(o.out) {
		return nil
	}
	x := o.out[o.outHead]
	o.out[o.outHead] = nil
	o.outHead++
	if o.outHead == len(o.out) {
		o.out, o.outHead = o.out[:0], 0
	}
	return x
}

func (o *orderer) ready() bool { return o.outHead < len(o.out) }

// exHeap is a min-heap of exchanges by (RequestStart, Conn.ID, Index).
type exHeap []*session.Exchange

func exLess(a, b *session.Exchange) bool {
	if a.Timing.RequestStart != b.Timing.RequestStart {
		return a.Timing.RequestStart < b.Timing.RequestStart
	}
	if a.Conn.ID != b.Conn.ID {
		return a.Conn.ID < b.Conn.ID
	}
	return a.Index < b.Index
}

func (h *exHeap) push(x *session.Exchange) { *h = session.HeapPush(*h, x, exLess) }

func (h *exHeap) pop() (x *session.Exchange) {
	x, *h = session.HeapPop(*h, exLess)
	return x
}
