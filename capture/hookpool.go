package capture

import (
	"runtime"
	"sync"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// The hook workers' batches: at most hookBatch exchanges or hookBytes of
// bodies, gathered for at most hookWait.
const (
	hookBatch = 64
	hookBytes = 4 << 20
	hookWait  = 10 * time.Millisecond
)

// hookJob is exchanges whose funcs run on one hook worker.
type hookJob struct {
	xs []*session.Exchange
	// at holds, per exchange, how many connections had ended when it was
	// ready: a connection's record is handed over (TakeConns) once the
	// exchange ready when it ended has been, after its exchanges, as
	// without workers, though the packets are read a batch ahead.
	at   []int
	done chan struct{} // one value once the funcs ran over xs
}

// hookPool is a pipeline's hook workers. It holds no reference to the
// pipeline, so an abandoned pipeline is collected and its workers end.
type hookPool struct {
	jobs chan *hookJob
	once sync.Once
}

func newHookPool(n int, hooks []func(*session.Exchange)) *hookPool {
	h := &hookPool{jobs: make(chan *hookJob, n)}
	for range n {
		go func(jobs <-chan *hookJob) {
			for b := range jobs {
				for _, x := range b.xs {
					for _, f := range hooks {
						f(x)
					}
				}
				b.done <- struct{}{}
			}
		}(h.jobs)
	}
	return h
}

func (h *hookPool) stop() { h.once.Do(func() { close(h.jobs) }) }

// gatherBatch gathers ready exchanges, reading packets as needed, and
// gives them to the hook workers; false when none came.
func (p *Pipeline) gatherBatch() bool {
	var b *hookJob
	if n := len(p.free); n > 0 {
		b, p.free = p.free[n-1], p.free[:n-1]
	} else {
		b = &hookJob{done: make(chan struct{}, 1)}
	}
	began := time.Now()
	bytes := 0
	for len(b.xs) < hookBatch && bytes < hookBytes {
		x := p.ord.pop()
		if x != nil {
			b.xs = append(b.xs, x)
			p.mu.Lock()
			b.at = append(b.at, p.connsTaken+len(p.conns))
			p.mu.Unlock()
			bytes += len(x.Request.Body) + len(x.Response.Body)
			continue
		}
		if p.done || (len(b.xs) > 0 && time.Since(began) >= hookWait) {
			break
		}
		p.step()
		if !p.ord.ready() && !p.done {
			break // a live source with no packet
		}
	}
	if len(b.xs) == 0 {
		p.free = append(p.free, b)
		return false
	}
	if p.pool == nil {
		p.pool = newHookPool(p.o.hookWorkers, p.o.hooks)
		runtime.AddCleanup(p, func(h *hookPool) { h.stop() }, p.pool)
	}
	p.inflight = append(p.inflight, b)
	p.pool.jobs <- b // never blocks: at most hookWorkers batches are in flight
	return true
}

// takeBatch makes the oldest batch in flight the one Next returns from,
// once its funcs ran; without wait, only if they already have.
func (p *Pipeline) takeBatch(wait bool) bool {
	b := p.inflight[0]
	if wait {
		<-b.done
	} else {
		select {
		case <-b.done:
		default:
			return false
		}
	}
	n := copy(p.inflight, p.inflight[1:])
	p.inflight[n] = nil
	p.inflight = p.inflight[:n]
	p.ahead, b.xs = b.xs, p.ahead[:0]
	p.aheadAt, b.at = b.at, p.aheadAt[:0]
	p.aheadHead = 0
	p.free = append(p.free, b)
	return true
}

// connsDue is how many of p.conns TakeConns hands over now: all of them
// without hook workers or once the input has ended, otherwise those that
// ended before the last exchange Next returned was ready. p.mu is held.
func (p *Pipeline) connsDue() int {
	if p.pool == nil || p.connsShown < 0 {
		return len(p.conns)
	}
	return min(len(p.conns), max(p.connsShown-p.connsTaken, 0))
}
