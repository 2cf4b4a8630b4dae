package summary

import (
	"testing"
	"time"
)

func TestNormalizeRoute(t *testing.T) {
	tests := []struct {
		target, want string
	}{
		{"/api/items/12345", "/api/items/{id}"},                                            // numeric ids
		{"/api/carts/6f1c2e0a-8d7b-4c1e-9a55-0123456789ab/lines", "/api/carts/{id}/lines"}, // UUIDs
		{"/objects/5f2b9c1de4a7", "/objects/{id}"},                                         // hex ids of 8+ chars
		{"/u/aB3dE6gH9jK2mN5p", "/u/{id}"},                                                 // opaque mixed tokens
		{"/api/items?page=2&sort=price", "/api/items"},                                     // queries dropped
		{"/api/v1/items", "/api/v1/items"},                                                 // short version segments stay
		{"/static/app.js", "/static/app.js"},                                               // names stay
		{"/cafe/beef", "/cafe/beef"},                                                       // hex-looking words without digits stay
		{"http://shop.local/api/items/7?x=1", "/api/items/{id}"},                           // absolute-form targets
		{"http://shop.local", "/"},
		{"*", "*"}, // OPTIONS *
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			if got := NormalizeRoute(tt.target); got != tt.want {
				t.Errorf("NormalizeRoute(%q) = %q, want %q", tt.target, got, tt.want)
			}
		})
	}
}

func TestLogHistogramMedian(t *testing.T) {
	var h logHistogram
	for i := 1; i <= 1001; i++ {
		h.add(int64(i) * int64(time.Millisecond))
	}
	got := time.Duration(h.quantile(0.5))
	if got < 486*time.Millisecond || got > 516*time.Millisecond {
		t.Errorf("median = %v, want 501ms within 3%% (the buckets are 5%% wide)", got)
	}
	var empty logHistogram
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
}

// TestRateCounterBounded feeds a month of one request a second: the
// counter stays within its bucket limit and keeps the total.
func TestRateCounterBounded(t *testing.T) {
	var r rateCounter
	start := int64(1767225600e9)
	const n = 30 * 24 * 3600
	for i := range n {
		r.add(start + int64(i)*1e9)
	}
	if len(r.counts) > maxRateBuckets {
		t.Fatalf("%d buckets", len(r.counts))
	}
	var total int64
	for _, c := range r.counts {
		total += c
	}
	if total != n {
		t.Fatalf("counted %d of %d", total, n)
	}
	rate := r.chart(60, start, start+(n-1)*1e9)
	if len(rate.PerSecond) > 60 || rate.Mean < 0.99 || rate.Mean > 1.01 {
		t.Errorf("chart = %d columns, mean %v", len(rate.PerSecond), rate.Mean)
	}
}
