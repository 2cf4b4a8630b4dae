package guard

import (
	"strings"
	"testing"

	"flag"
)

func TestParseRules(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Rules
		text string // String() of the result
	}{
		// The example.
		{"example", "error_rate>5%,p99>2s,lag>5s",
			Rules{{ErrorRate, Greater, 0.05, false}, {P99, Greater, 2, false}, {Lag, Greater, 5, false}},
			"error_rate>5%,p99>2s,lag>5s"},
		// Milliseconds and minutes, >= and spaces.
		{"units", " p50 >= 250ms , max>1m ",
			Rules{{P50, GreaterEqual, 0.25, false}, {Max, Greater, 60, false}}, "p50>=250ms,max>1m"},
		// timeouts as a count and as a share.
		{"timeouts", "timeouts>10,timeouts>=1.5%",
			Rules{{Timeouts, Greater, 10, false}, {Timeouts, GreaterEqual, 0.015, true}}, "timeouts>10,timeouts>=1.5%"},
		// A throughput floor.
		{"rps", "rps<50", Rules{{RPS, Less, 50, false}}, "rps<50"},
		// 5xx share, upper-case metric.
		{"5xx", "STATUS_5XX_RATE>0.5%", Rules{{Status5xxRate, Greater, 0.005, false}}, "status_5xx_rate>0.5%"},
		// Seconds with a fraction.
		{"fraction", "p95>1.5s,p90<=0.8s", Rules{{P95, Greater, 1.5, false}, {P90, LessEqual, 0.8, false}}, "p95>1.5s,p90<=800ms"},
		// none turns guards off.
		{"none", "None", Rules{}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRules(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("rule %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if got.String() != tt.text {
				t.Errorf("String() = %q, want %q", got.String(), tt.text)
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // names the fix
	}{
		{"empty", "", "give rules"},                                  // nothing
		{"no comparison", "p99 2s", "write it like p99>2s"},          // missing operator
		{"unknown", "p42>1s", "use one of error_rate"},               // not a metric
		{"no percent", "error_rate>5", "write error_rate>5%"},        // rates take %
		{"no unit", "p99>2", `write 2s or 2ms`},                      // durations take units
		{"bad duration", "p99>2 secs", "write it like 500ms"},        // not a Go duration
		{"over 100", "error_rate>150%", "from 0% to 100%"},           // impossible share
		{"none mixed", "none,p99>2s", `"none" stands alone`},         // none with rules
		{"trailing", "p99>2s,", "extra"},                             // a trailing comma
		{"bad op", "p99=>2s", "must be >"},                           // reversed operator
		{"no threshold", "p99>", "no threshold"},                     // nothing after >
		{"no metric", ">2s", "names no metric"},                      // nothing before >
		{"timeouts word", "timeouts>many", "timeouts takes a count"}, // not a number
		{"long", "max>2h", "over an hour"},                           // unreasonable
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules(tt.in)
			if err == nil {
				t.Fatalf("ParseRules(%q) succeeded", tt.in)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // Rules().String(), or an error part
		err  bool
	}{
		// Not given: the defaults.
		{"default", nil, "error_rate>20%,p99>5s", false},
		// Given: replaces the defaults.
		{"replace", []string{"--abort-on", "p99>2s"}, "p99>2s", false},
		// Given twice: adds.
		{"append", []string{"--abort-on", "p99>2s", "--abort-on", "lag>5s"}, "p99>2s,lag>5s", false},
		// none: no guard.
		{"none", []string{"--abort-on", "none"}, "none", false},
		// none and a rule conflict.
		{"none then rule", []string{"--abort-on", "none", "--abort-on", "p99>2s"}, "cannot be combined", true},
		// A bad rule fails at parse time.
		{"bad", []string{"--abort-on", "p99>2"}, "needs a unit", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("replay", flag.ContinueOnError)
			fs.SetOutput(new(strings.Builder))
			var f Flag
			fs.Var(&f, "abort-on", "rules")
			err := fs.Parse(tt.args)
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Rules().String(); got != tt.want {
				t.Errorf("rules %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzParseAbortOn checks that ParseRules never panics, that errors have
// messages, and that what it accepts prints back to the same rules.
func FuzzParseAbortOn(f *testing.F) {
	for _, s := range []string{"error_rate>5%,p99>2s,lag>5s", "none", "timeouts>=1%", "rps<50", "p50>=250ms,max>1m", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseRules(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		again, err := ParseRules(rs.String())
		if err != nil {
			t.Fatalf("%q printed as %q which fails: %v", s, rs.String(), err)
		}
		if again.String() != rs.String() {
			t.Fatalf("%q printed as %q, reparsed as %q", s, rs.String(), again.String())
		}
	})
}
