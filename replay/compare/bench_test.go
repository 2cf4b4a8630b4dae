package compare

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkDiffJSON compares two 100-item product pages that differ in one
// price and every timestamp, the shape of a typical API answer.
func BenchmarkDiffJSON(b *testing.B) {
	page := func(bump int, minute int) string {
		var sb strings.Builder
		sb.WriteString(`{"page":1,"items":[`)
		for i := 0; i < 100; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			price := 199 + i
			if i == 42 {
				price += bump
			}
			fmt.Fprintf(&sb, `{"id":%d,"name":"Product %d","price_cents":%d,"updated_at":"2026-11-26T01:%02d:00Z"}`, i, i, price, minute)
		}
		sb.WriteString(`]}`)
		return sb.String()
	}
	p, s := jsonResp(200, page(0, 1)), jsonResp(200, page(1, 2))
	c, err := New()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p.Body) + len(s.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if d := c.Diff(p, s, nil); len(d) != 101 {
			b.Fatalf("%d differences", len(d))
		}
	}
}
