package replay

import (
	"testing"
)

// FuzzParseSpeed: --speed never panics and accepts only what the engine
// can use.
func FuzzParseSpeed(f *testing.F) {
	for _, s := range []string{"1", "2x", "0.1", "100", "max", "MAX", "1e2", "-1", "NaN", "Inf", "0x10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSpeed(s)
		if err != nil {
			return
		}
		if sp, ok := p.(Speed); ok && (float64(sp) < MinSpeed || float64(sp) > MaxSpeed) {
			t.Fatalf("%q accepted as %v", s, sp)
		}
	})
}
