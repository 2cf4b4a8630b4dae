package live_test

import (
	"os"
	"time"

	"github.com/reprise-tool/reprise/replay/live"
)

// Without a terminal, progress is one plain line every few seconds.
func ExampleProgress() {
	p, _ := live.NewProgress(os.Stdout, live.WithTerminal(false))
	p.Update(live.Snapshot{Elapsed: 5 * time.Second, Total: time.Minute, Stage: "1x:30s", StageIndex: 1, Stages: 2,
		RPS: 100, P50: 8 * time.Millisecond, P99: 40 * time.Millisecond, Sent: 500, Completed: 498})
	// Output:
	// reprise: 5s/1m0s stage 1x:30s (1/2) | 100 req/s | p50 8ms p99 40ms | errors 0 | lag 0ms | in flight 0 | sent 500
}
