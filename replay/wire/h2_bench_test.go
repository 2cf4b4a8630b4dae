//go:build linux

package wire_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/replay/wire"
)

// BenchmarkH2Nginx is the HTTP/2 send and receive path alone, as the
// h2load benchmark of the replay runs it: 8 lines to nginx serving h2c
// with 16 streams per connection, 128 streams in flight, each a GET
// whose status alone is kept. "spread" sends each goroutine's streams on
// one line (16 a line, never waiting for a slot); "mixed" sends each
// stream on the next line in turn, as a recording's interleaved
// connections do, so that some lines hold more than 16 and streams wait.
// Besides time and allocations it reports the process's CPU time per
// stream (user and system), which a shared machine disturbs less.
//
//	go test ./replay/wire -run '^$' -bench H2Nginx -benchmem
func BenchmarkH2Nginx(b *testing.B) {
	const conns, streams = 8, 16
	addr := testkit.FreeAddr(b)
	testkit.StartNginx(b, b.TempDir(), addr, testkit.H2cJSONServer(addr), "$status")
	for _, mode := range []string{"spread", "mixed"} {
		b.Run(mode, func(b *testing.B) {
			c := wire.NewH2(wire.Config{Addr: addr, ConnectTimeout: time.Second, Timeout: 10 * time.Second, BodyLimit: 1 << 20})
			defer c.CloseAll()
			lines := make([]*wire.H2Line, conns)
			for i := range lines {
				lines[i] = c.NewLine()
				if err := lines[i].Open(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var next, turn atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Value
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := testkit.CPUTime()
			for g := range conns * streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req := &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/", Host: addr, StatusOnly: true}}
					for next.Add(1) <= int64(b.N) {
						l := lines[g%conns]
						if mode == "mixed" {
							l = lines[turn.Add(1)%conns]
						}
						resp, _, err := l.Do(ctx, req)
						if err != nil || resp.Status != 200 {
							failed.CompareAndSwap(nil, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(testkit.CPUTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
			st := c.Stats()
			b.ReportMetric(float64(st.ConcurrencyWaits)/float64(b.N), "waits/op")
		})
	}
}
