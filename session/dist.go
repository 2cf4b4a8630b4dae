package session

import (
	"math"
	"slices"
)

// Dist summarises a distribution, in the unit its field's JSON name gives
// ("lag_ms", "session_length_s"). The session report, check's predicted
// schedule and any other per-recording figure share it, so a p99 means the
// same nearest-rank quantile everywhere.
type Dist struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Summarize returns the Dist of v, or the zero Dist when v is empty. v is
// not changed.
func Summarize(v []float64) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	v = slices.Clone(v)
	slices.Sort(v)
	var sum float64
	for _, x := range v {
		sum += x
	}
	return Dist{
		Count: int64(len(v)), Min: v[0], Mean: sum / float64(len(v)),
		P50: Quantile(v, 0.5), P90: Quantile(v, 0.9), P99: Quantile(v, 0.99), Max: v[len(v)-1],
	}
}

// Quantile returns the q-quantile (0..1) of sorted values by the nearest
// rank, or 0 when there are none.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
