package check

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func TestKS(t *testing.T) {
	tests := []struct {
		name string
		a, b Sample
		want float64
	}{
		// The same values: the CDFs coincide everywhere.
		{"identical", Values(1, 2, 3), Values(3, 2, 1), 0},
		// No overlap: after b's last value a has not started.
		{"disjoint", Values(1, 2), Values(3, 4), 1},
		// Shifted by two: at 2, F_a=2/4 and F_b=0; at 4, 1 against 2/4.
		{"shifted", Values(1, 2, 3, 4), Values(3, 4, 5, 6), 0.5},
		// One point in the middle: |1/3-0| at 1 and |2/3-1| at 2.
		{"single point", Values(1, 2, 3), Values(2), 1.0 / 3},
		// Ties across the samples step together: at 1, 2/3 against 1/3.
		{"ties", Values(1, 1, 2), Values(1, 2, 2), 1.0 / 3},
		// Weights count as repetitions: {1:2, 2:2} is [1 1 2 2];
		// at 1, 1/2 against 1/4.
		{"weighted", Sample{{1, 2}, {2, 2}}, Values(1, 2, 2, 2), 0.25},
		// Scale does not matter, only order: a KS is invariant under
		// a monotone map of both samples.
		{"scaled both", Values(1, 2, 3, 4).Scale(10), Values(3, 4, 5, 6).Scale(10), 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := KS(tc.a, tc.b); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("KS = %v, want %v", got, tc.want)
			}
			if got := KS(tc.b, tc.a); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("KS reversed = %v, want %v (symmetric)", got, tc.want)
			}
		})
	}
	// An empty sample has no distribution to compare.
	if got := KS(nil, Values(1)); !math.IsNaN(got) {
		t.Errorf("KS(empty) = %v, want NaN", got)
	}
}

func TestKSFromHDR(t *testing.T) {
	// A histogram compares like the values it holds, up to its
	// resolution: 100 values 1..100 ms against themselves is 0, against
	// 51..150 ms is 0.5.
	h := hdrhistogram.New(1, 1_000_000, 3)
	var raw, shifted []float64
	for v := 1; v <= 100; v++ {
		_ = h.RecordValue(int64(v) * 1000) // µs
		raw = append(raw, float64(v))
		shifted = append(shifted, float64(v+50))
	}
	s := SampleOfHDR(h, 1e-3)
	if got := KS(s, Values(raw...)); got > 0.011 {
		t.Errorf("KS(hdr, same values) = %v, want about 0", got)
	}
	if got := KS(s, Values(shifted...)); math.Abs(got-0.5) > 0.011 {
		t.Errorf("KS(hdr, shifted by 50) = %v, want about 0.5", got)
	}
}

func TestTotalVariation(t *testing.T) {
	tests := []struct {
		name         string
		a, b         map[string]float64
		want         float64
		worst        string
		shareA, shar float64
	}{
		// The same mix at another volume: shares are equal.
		{"same shares", map[string]float64{"x": 1, "y": 1}, map[string]float64{"x": 5, "y": 5}, 0, "x", 0.5, 0.5},
		// 75/25 against 25/75: (0.5+0.5)/2.
		{"swapped", map[string]float64{"x": 3, "y": 1}, map[string]float64{"x": 1, "y": 3}, 0.5, "x", 0.75, 0.25},
		// Nothing in common.
		{"disjoint", map[string]float64{"x": 1}, map[string]float64{"y": 1}, 1, "x", 1, 0},
		// One route filtered out: z goes from 25% to 0, y from 25% to
		// 50%: (0+0.25+0.25)/2; y and z tie, y comes first.
		{"filtered", map[string]float64{"x": 2, "y": 1, "z": 1}, map[string]float64{"x": 2, "y": 2}, 0.25, "y", 0.25, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, worst, a, b := TotalVariation(tc.a, tc.b)
			if math.Abs(d-tc.want) > 1e-12 || worst != tc.worst || math.Abs(a-tc.shareA) > 1e-12 || math.Abs(b-tc.shar) > 1e-12 {
				t.Errorf("TotalVariation = %v, %q (%v, %v); want %v, %q (%v, %v)", d, worst, a, b, tc.want, tc.worst, tc.shareA, tc.shar)
			}
		})
	}
	if d, _, _, _ := TotalVariation(nil, map[string]float64{"x": 1}); !math.IsNaN(d) {
		t.Errorf("TotalVariation(empty) = %v, want NaN", d)
	}
}

func TestThresholdsSet(t *testing.T) {
	tests := []struct {
		name, key, value string
		want             float64
		wantErr          string
	}{
		// A plain number.
		{"number", "mix_fail", "0.05", 0.05, ""},
		// A percentage for a share.
		{"percent", "mix_fail", "5%", 0.05, ""},
		// Zero turns a check off.
		{"off", "refresh_compression_fail", "0", 0, ""},
		// An unknown key lists the known ones.
		{"unknown", "mix", "1", 0, "use one of refresh_peak_warn"},
		// Negative and non-numbers are refused with an example.
		{"negative", "lag_fail_s", "-1", 0, "lag_fail_s=0.05"},
		{"word", "lag_fail_s", "slow", 0, "want a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := DefaultThresholds()
			err := th.Set(tc.key, tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(th)
			var m map[string]float64
			_ = json.Unmarshal(b, &m)
			if math.Abs(m[tc.key]-tc.want) > 1e-12 {
				t.Errorf("%s = %v, want %v", tc.key, m[tc.key], tc.want)
			}
		})
	}
}
