package summary

import (
	"math"
	"os"
)

// logHistogram counts durations in buckets 5% apart from 1µs to about
// 1.5 hours: 1.2 KB per route whatever the traffic, with medians within
// 2.5%. (HdrHistogram's exactness costs ~25 KB per route, which thousands
// of routes cannot afford.)
type logHistogram struct {
	counts [histBuckets]uint32
	n      uint64
}

const (
	histBuckets = 320
	histBase    = 1000 // 1µs in ns
)

var histLog = math.Log(1.05)

func (h *logHistogram) add(ns int64) {
	i := 0
	if ns > histBase {
		i = int(math.Log(float64(ns)/histBase)/histLog) + 1
	}
	i = min(i, histBuckets-1)
	if h.counts[i] < math.MaxUint32 {
		h.counts[i]++
		h.n++
	}
}

// quantile returns the q-quantile in nanoseconds, interpolated within its
// bucket by rank, or 0 for an empty histogram.
func (h *logHistogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := max(math.Ceil(q*float64(h.n)), 1)
	var seen float64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			if i == 0 {
				return histBase
			}
			frac := (rank - seen - 0.5) / float64(c) // the rank's place within the bucket
			return int64(histBase * math.Pow(1.05, float64(i-1)+frac))
		}
		seen += float64(c)
	}
	return 0
}

// rateCounter counts requests in time buckets that start at one second
// and double in width when the recording outgrows maxRateBuckets, so it
// stays small for recordings of any length.
type rateCounter struct {
	base   int64 // start of bucket 0, Unix ns
	width  int64 // ns
	counts []int64
}

const maxRateBuckets = 4096

// hint sets the start of bucket 0 before any add, from a trailer index.
func (r *rateCounter) hint(start int64) {
	if r.counts == nil && (r.base == 0 || start < r.base) {
		r.base = start
	}
}

func (r *rateCounter) add(ts int64) {
	if ts == 0 {
		return
	}
	if r.width == 0 {
		r.width = 1e9
		if r.base == 0 || ts < r.base {
			r.base = ts
		}
	}
	i := max((ts-r.base)/r.width, 0) // out of order before the start: bucket 0
	for i >= maxRateBuckets {
		// Halve the resolution: merge bucket pairs.
		for j := 0; j < len(r.counts); j += 2 {
			c := r.counts[j]
			if j+1 < len(r.counts) {
				c += r.counts[j+1]
			}
			r.counts[j/2] = c
		}
		r.counts = r.counts[:(len(r.counts)+1)/2]
		r.width *= 2
		i = (ts - r.base) / r.width
	}
	for int64(len(r.counts)) <= i {
		r.counts = append(r.counts, 0)
	}
	r.counts[i]++
}

// chart resamples the counts into at most cols columns over [start, end].
func (r *rateCounter) chart(cols int, start, end int64) Rate {
	var out Rate
	if len(r.counts) == 0 {
		out.PerSecond = []float64{}
		return out
	}
	n := len(r.counts)
	per := (n + cols - 1) / cols // buckets per column
	out.BucketSeconds = float64(int64(per)*r.width) / 1e9
	var total int64
	for c := 0; c*per < n; c++ {
		var sum int64
		for j := c * per; j < min((c+1)*per, n); j++ {
			sum += r.counts[j]
		}
		total += sum
		v := float64(sum) / out.BucketSeconds
		out.PerSecond = append(out.PerSecond, math.Round(v*100)/100)
		out.Peak = max(out.Peak, math.Round(v*100)/100)
	}
	span := float64(end-start) / 1e9
	if span < out.BucketSeconds/float64(per) {
		span = float64(r.width) / 1e9
	}
	out.Mean = math.Round(float64(total)/span*100) / 100
	return out
}

func fileSize(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
