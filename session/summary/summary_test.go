package summary

import (
	"testing"
	"time"
)

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

// Byte counts as the summaries and commands print them.
func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{HumanBytes(512), "512 B"},       // below a KiB: exact
		{HumanBytes(1536), "1.5 KiB"},    // binary units
		{HumanBytes(3 << 30), "3.0 GiB"}, // the largest unit
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
