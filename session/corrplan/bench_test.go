package corrplan

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// BenchmarkBuilder is the survey's plan pass over recordings shaped like
// the benches' (see madeUp), and over the files in
// $REPRISE_PLAN_RECORDINGS: ns and allocations per exchange, and the CPU
// time per exchange (the process's, the garbage collector's included),
// which a loaded machine does not inflate as it does ns.
func BenchmarkBuilder(b *testing.B) {
	sets := map[string]func() []*session.Exchange{}
	for _, kind := range []string{"json", "static", "h2c", "flow", "varied"} {
		sets[kind] = func() []*session.Exchange { return madeUp(kind, 50_000, 1) }
	}
	for _, path := range strings.Split(os.Getenv("REPRISE_PLAN_RECORDINGS"), ",") {
		if path != "" {
			sets["file="+filepath.Base(path)] = func() []*session.Exchange { return recordingFile(b, path, 200_000) }
		}
	}
	for name, set := range sets {
		b.Run(name, func(b *testing.B) {
			exs := set()
			var size int64
			for _, x := range exs {
				size += int64(len(x.Response.Body) + len(x.Request.Body))
			}
			b.SetBytes(size)
			b.ReportAllocs()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			cpu0 := testkit.CPUTime()
			for b.Loop() {
				bl := NewBuilder(0)
				for _, x := range exs {
					bl.Add(x)
				}
				bl.Plan()
			}
			cpu := testkit.CPUTime() - cpu0
			runtime.ReadMemStats(&m1)
			per := float64(b.N * len(exs))
			b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/exchange")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/exchange")
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/per, "allocs/exchange")
		})
	}
}
