package main

import "testing"

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "1048576", want: 1 << 20},   // plain bytes
		{in: "64k", want: 64 << 10},      // a bare k is 1024
		{in: "64KiB", want: 64 << 10},    // IEC unit, any case
		{in: "1mib", want: 1 << 20},      // lower case
		{in: "100MB", want: 100_000_000}, // SI unit means powers of 1000
		{in: "1GB", want: 1_000_000_000},
		{in: "2G", want: 2 << 30},
		{in: " 5 MiB ", want: 5 << 20}, // spaces around the number and unit
		{in: "0", want: 0},
		{in: "-1", bad: true},            // negative
		{in: "1.5MB", bad: true},         // fractions are not taken
		{in: "ten", bad: true},           // no number
		{in: "9999999999GiB", bad: true}, // overflows int64
		{in: "", bad: true},              // empty
	} {
		got, err := parseSize(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}
