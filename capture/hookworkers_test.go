package capture

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/reprise-tool/reprise/session"
)

// hookTrace has n exchanges on n connections, more than one hook batch.
func hookTrace(n int) *trace {
	tr := newTrace(layers.LinkTypeEthernet)
	for i := 0; i < n; i++ {
		c := tr.conn(fmt.Sprintf("10.0.%d.%d:%d", i/200, i%200+1, 40000+i), "10.0.0.2:8080")
		c.handshake()
		c.send(true, reqA)
		c.send(false, respA)
		tr.tick(time.Millisecond)
	}
	return tr
}

// settledGoroutines is the goroutine count once it stops moving (earlier
// tests' goroutines winding down), bounded to 2 s: the base the counts
// with workers running and after they end are compared with.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

// waitGoroutines waits up to a second for the goroutine count to fall to
// at most n.
func waitGoroutines(n int) int {
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

// TestHookWorkersBatches runs the funcs over several batches: the order
// is the one without workers, each func runs once per exchange, and the
// workers end with the input.
func TestHookWorkersBatches(t *testing.T) {
	tr := hookTrace(3*hookBatch + 5)
	plain, _ := collect(t, &memSource{tr: tr})
	before := settledGoroutines()
	var calls atomic.Int64
	par, c := collect(t, &memSource{tr: tr}, WithHookWorkers(3), WithExchangeFunc(func(x *session.Exchange) {
		calls.Add(1)
		x.Warnings = append(x.Warnings, "hooked")
	}))
	if strings.Join(lines(plain), "\n") != strings.Join(lines(par), "\n") || calls.Load() != int64(len(plain)) || c.Exchanges != uint64(len(plain)) {
		t.Fatalf("with workers: %d calls, %d exchanges counted, %d returned; want %d in the order without workers", calls.Load(), c.Exchanges, len(par), len(plain))
	}
	for _, x := range par {
		if len(x.Warnings) != 1 {
			t.Fatalf("exchange %s: warnings %v", line(x), x.Warnings)
		}
	}
	if n := waitGoroutines(before); n > before {
		t.Errorf("%d goroutines after the input ended, %d before: the hook workers did not end", n, before)
	}
}

// TestHookWorkersAbandoned: a pipeline whose reader stops calling Next
// after one exchange leaves no worker behind once it is collected.
func TestHookWorkersAbandoned(t *testing.T) {
	before := settledGoroutines()
	func() {
		p, err := FromPackets(context.Background(), &memSource{tr: hookTrace(2 * hookBatch)}, WithHookWorkers(3), WithExchangeFunc(func(*session.Exchange) {}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Next(); err != nil {
			t.Fatal(err)
		}
		if runtime.NumGoroutine() < before+3 {
			t.Fatalf("%d goroutines with the pipeline running, want at least %d", runtime.NumGoroutine(), before+3)
		}
	}()
	if n := waitGoroutines(before); n > before {
		t.Errorf("%d goroutines after the pipeline was abandoned, %d before", n, before)
	}
}

// TestHookWorkersCancel: cancelling the context ends the input with the
// exchanges read so far, in order, and the workers with it.
func TestHookWorkersCancel(t *testing.T) {
	tr := hookTrace(3 * hookBatch)
	plain, _ := collect(t, &memSource{tr: tr})
	before := settledGoroutines()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := FromPackets(ctx, &memSource{tr: tr}, WithHookWorkers(2), WithExchangeFunc(func(*session.Exchange) {}))
	if err != nil {
		t.Fatal(err)
	}
	var got []*session.Exchange
	for {
		x, err := p.Next()
		if err != nil {
			break
		}
		got = append(got, x)
		if len(got) == 10 {
			cancel()
		}
	}
	if len(got) < 10 || len(got) >= len(plain) {
		t.Fatalf("%d exchanges after a cancel at 10, of %d", len(got), len(plain))
	}
	for i, x := range got {
		if line(x) != line(plain[i]) {
			t.Fatalf("exchange %d: %s, want %s", i, line(x), line(plain[i]))
		}
	}
	if n := waitGoroutines(before); n > before {
		t.Errorf("%d goroutines after the cancelled input ended, %d before", n, before)
	}
}

// orderSink notes what Record writes, in order.
type orderSink struct {
	discard
	events []string
}

func (s *orderSink) WriteExchange(x *session.Exchange) error {
	s.events = append(s.events, fmt.Sprintf("x %d", x.Conn.ID))
	return nil
}

func (s *orderSink) WriteConn(c *session.ConnInfo) error {
	s.events = append(s.events, fmt.Sprintf("c %d", c.ID))
	return nil
}

// TestHookWorkersConnRecordsFollow: with hook workers reading packets a
// batch ahead, a connection's record still comes after its exchanges, and
// every connection has one.
func TestHookWorkersConnRecordsFollow(t *testing.T) {
	tr := newTrace(layers.LinkTypeEthernet)
	const n = 3*hookBatch + 7
	for i := 0; i < n; i++ {
		c := tr.conn(fmt.Sprintf("10.0.%d.%d:%d", i/200, i%200+1, 40000+i), "10.0.0.2:8080")
		c.handshake()
		c.send(true, reqA)
		c.send(false, respA)
		c.send(true, reqA)
		c.send(false, respA)
		c.fin(true)
		c.fin(false)
		tr.tick(time.Millisecond)
	}
	for _, workers := range []int{0, 3} {
		p, err := FromPackets(context.Background(), &memSource{tr: tr}, WithHookWorkers(workers), WithExchangeFunc(func(*session.Exchange) {}))
		if err != nil {
			t.Fatal(err)
		}
		var s orderSink
		if _, err := Record(context.Background(), p, &s); err != nil {
			t.Fatal(err)
		}
		left := map[string]int{}
		recs := 0
		for _, e := range s.events {
			if e[0] == 'x' {
				left[e[2:]]++
				continue
			}
			recs++
			if left[e[2:]] != 2 {
				t.Fatalf("workers %d: the record of connection %s came after %d of its 2 exchanges", workers, e[2:], left[e[2:]])
			}
		}
		if recs != n || len(left) != n {
			t.Errorf("workers %d: %d connection records and %d connections with exchanges, want %d", workers, recs, len(left), n)
		}
	}
}
