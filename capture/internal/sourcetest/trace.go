package sourcetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// TraceBodySize draws a response body's size as the import benchmarks'
// API trace has them: 70% 0.2–2 KB, 25% 2–20 KB, 5% 20–100 KB. The
// capture benchmark and the redactor's share it so that the redactor is
// measured on the bodies the import measures.
func TraceBodySize(rng *rand.Rand) int {
	switch r := rng.IntN(100); {
	case r < 70:
		return 200 + rng.IntN(1800)
	case r < 95:
		return 2000 + rng.IntN(18000)
	default:
		return 20000 + rng.IntN(80000)
	}
}

// TraceJSON returns a product listing of about n bytes ("id", "name",
// "price" objects), the JSON of the same trace.
func TraceJSON(rng *rand.Rand, n int) string {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n-40; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item-%d","price":%d.%02d}`, i, rng.IntN(1e6), rng.IntN(500), rng.IntN(100))
	}
	b.WriteString(`]}`)
	return b.String()
}
