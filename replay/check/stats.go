package check

import (
	"cmp"
	"math"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Point is one value of a sample with its weight (how many times it was
// seen). A plain sample has weight 1 everywhere; a sample read from an HDR
// histogram has one point per bucket.
type Point struct {
	Value  float64
	Weight float64
}

// Sample is a distribution given by its points, in any order.
type Sample []Point

// Values makes a Sample of plain values, each of weight 1.
func Values(v ...float64) Sample {
	s := make(Sample, len(v))
	for i, x := range v {
		s[i] = Point{x, 1}
	}
	return s
}

// SampleOfHDR turns an HDR histogram into a Sample: one point per
// non-empty bucket, at the bucket's highest equivalent value, scaled by
// unit (e.g. 1e-3 to turn microseconds into milliseconds).
func SampleOfHDR(h *hdrhistogram.Histogram, unit float64) Sample {
	if h == nil {
		return nil
	}
	var s Sample
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			s = append(s, Point{float64(b.To) * unit, float64(b.Count)})
		}
	}
	return s
}

// Total returns the sum of the weights.
func (s Sample) Total() float64 {
	var t float64
	for _, p := range s {
		t += p.Weight
	}
	return t
}

// Scale returns a copy with every value multiplied by f.
func (s Sample) Scale(f float64) Sample {
	out := make(Sample, len(s))
	for i, p := range s {
		out[i] = Point{p.Value * f, p.Weight}
	}
	return out
}

// Floor returns s with every value below f raised to f: differences
// below a resolution count as none.
func (s Sample) Floor(f float64) Sample {
	out := make(Sample, len(s))
	for i, p := range s {
		out[i] = Point{max(p.Value, f), p.Weight}
	}
	return out
}

// KSNoise is how large the two-sample Kolmogorov-Smirnov statistic of
// samples of n and m values grows by chance alone: its critical value at
// the 5% level, 1.36·sqrt((n+m)/(n·m)). With 185 values on each side
// that is 0.14.
func KSNoise(n, m float64) float64 {
	if n <= 0 || m <= 0 {
		return math.NaN()
	}
	return 1.36 * math.Sqrt((n+m)/(n*m))
}

// KS returns the two-sample Kolmogorov-Smirnov statistic of a and b: the
// largest distance between their empirical cumulative distributions, from 0
// (the same distribution) to 1 (disjoint). It is NaN when either sample is
// empty. Weights count as repetitions, so a histogram compares like the
// raw values it holds (up to its bucket resolution).
func KS(a, b Sample) float64 {
	ta, tb := a.Total(), b.Total()
	if ta <= 0 || tb <= 0 {
		return math.NaN()
	}
	a, b = sorted(a), sorted(b)
	var i, j int
	var fa, fb, d float64
	for i < len(a) || j < len(b) {
		// Step both CDFs past the next smallest value, with all its ties.
		var x float64
		switch {
		case i == len(a):
			x = b[j].Value
		case j == len(b):
			x = a[i].Value
		default:
			x = min(a[i].Value, b[j].Value)
		}
		for i < len(a) && a[i].Value == x {
			fa += a[i].Weight
			i++
		}
		for j < len(b) && b[j].Value == x {
			fb += b[j].Weight
			j++
		}
		d = max(d, math.Abs(fa/ta-fb/tb))
	}
	return d
}

func sorted(s Sample) Sample {
	s = slices.Clone(s)
	slices.SortFunc(s, func(x, y Point) int { return cmp.Compare(x.Value, y.Value) })
	return s
}

// TotalVariation returns the total variation distance between two
// distributions given as counts by name (e.g. requests by route): half the
// sum of the absolute differences of their shares, from 0 (the same mix)
// to 1 (no name in common). It also names the key whose share differs
// most, with its share in a and in b. It is NaN when either is empty.
func TotalVariation(a, b map[string]float64) (d float64, worst string, shareA, shareB float64) {
	var ta, tb float64
	for _, v := range a {
		ta += v
	}
	for _, v := range b {
		tb += v
	}
	if ta <= 0 || tb <= 0 {
		return math.NaN(), "", 0, 0
	}
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // ties in the worst key go to the first name
	var most float64 = -1
	for _, k := range keys {
		pa, pb := a[k]/ta, b[k]/tb
		diff := math.Abs(pa - pb)
		d += diff
		if diff > most {
			most, worst, shareA, shareB = diff, k, pa, pb
		}
	}
	return d / 2, worst, shareA, shareB
}
