package schedule

import (
	"testing"
	"time"
)

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// TestSpeed: a constant speed divides offsets and multiplies wall time
// (formerly ramp's TestConstant).
func TestSpeed(t *testing.T) {
	c := Speed(4)
	if c.Due(sec(8)) != sec(2) || c.Offset(sec(2)) != sec(8) || c.Speed(0) != 4 {
		t.Errorf("Speed(4): Due %v Offset %v", c.Due(sec(8)), c.Offset(sec(2)))
	}
}

func TestParseSpeed(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Pacer // nil: an error
	}{
		{"2", Speed(2)},      // a plain number
		{"2.5x", Speed(2.5)}, // with the x
		{" MAX ", Max{}},     // max, any case and spaces
		{"0.1", Speed(0.1)},  // the lowest
		{"100x", Speed(100)}, // the highest
		{"0.05", nil},        // too slow
		{"101", nil},         // too fast
		{"fast", nil},        // not a number
		{"NaN", nil},         // not a speed
	} {
		got, err := ParseSpeed(tt.in)
		if (err != nil) != (tt.want == nil) || (err == nil && got != tt.want) {
			t.Errorf("ParseSpeed(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDueMax(t *testing.T) {
	if m := (Max{}); m.Due(sec(30)) != 0 || m.Speed(sec(1)) != 0 || !IsMax(m) || IsMax(Speed(1)) {
		t.Error("Max is due at once and has no speed")
	}
}
