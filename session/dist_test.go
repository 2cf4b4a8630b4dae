package session

import "testing"

func TestSummarize(t *testing.T) {
	cases := []struct {
		name string
		in   []float64
		want Dist
	}{
		// Nothing: the zero Dist.
		{"empty", nil, Dist{}},
		// One value is every quantile.
		{"one", []float64{7}, Dist{Count: 1, Min: 7, Mean: 7, P50: 7, P90: 7, P99: 7, Max: 7}},
		// Nearest rank on unsorted input: p50 of 1..10 is 5, p90 is 9.
		{"ten", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, Dist{Count: 10, Min: 1, Mean: 5.5, P50: 5, P90: 9, P99: 10, Max: 10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := append([]float64(nil), c.in...)
			if got := Summarize(in); got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range in {
				if in[i] != c.in[i] {
					t.Fatal("Summarize changed its input")
				}
			}
		})
	}
}
