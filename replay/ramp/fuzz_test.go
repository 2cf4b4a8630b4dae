package ramp

import (
	"testing"
	"time"
)

// FuzzParseRamp checks that Parse never panics, that what it accepts
// prints back to an equal ramp, and that Due and Offset stay monotonic and
// inverse on it.
func FuzzParseRamp(f *testing.F) {
	for _, s := range []string{"1x:2m,2x:2m,5x:5m,10x", "1x:2m~,5x", "scale=1:2m,scale=3", "3x", "0.1x:1s~,100x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		again, err := Parse(r.String())
		if err != nil || again.String() != r.String() {
			t.Fatalf("%q printed as %q which parses as %v, %v", s, r.String(), again, err)
		}
		var prev time.Duration
		for _, o := range []time.Duration{0, time.Second, time.Minute, time.Hour, 30 * time.Hour} {
			w := r.Due(o)
			if w < prev {
				t.Fatalf("%q: Due not monotonic at %v", s, o)
			}
			prev = w
			back := r.Offset(w)
			if d := back - o; d > time.Microsecond || d < -time.Microsecond {
				t.Fatalf("%q: Offset(Due(%v)) = %v", s, o, back)
			}
		}
		r.Plan(time.Hour)
		r.ActiveFrom(2)
	})
}

// FuzzParseRate checks ParseRate never panics and accepts only finite,
// bounded rates.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/s", "6000/m", "100", "0", "1/h", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err == nil && (r.PerSecond < 0 || r.PerSecond > MaxRate || r.PerSecond != r.PerSecond) {
			t.Fatalf("%q accepted as %v/s", s, r.PerSecond)
		}
	})
}
