package ramp

import (
	"math"
	"strings"
	"testing"
	"time"

	"flag"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		kind Kind
		want []Stage
		text string // String() of the result
	}{
		// The example: stepped speed stages, the last open-ended.
		{"stepped", "1x:2m,2x:2m,5x:5m,10x", KindSpeed,
			[]Stage{{1, 2 * time.Minute, false}, {2, 2 * time.Minute, false}, {5, 5 * time.Minute, false}, {10, 0, false}},
			"1x:2m,2x:2m,5x:5m,10x"},
		// "~" makes a stage linear towards the next one.
		{"linear", "1x:2m~,5x", KindSpeed,
			[]Stage{{1, 2 * time.Minute, true}, {5, 0, false}}, "1x:2m~,5x"},
		// One stage is a constant speed.
		{"single", "3x", KindSpeed, []Stage{{3, 0, false}}, "3x"},
		// Fractions, spaces and upper case are accepted.
		{"loose", " 0.5X : 90s , 1.5x ", KindSpeed,
			[]Stage{{0.5, 90 * time.Second, false}, {1.5, 0, false}}, "0.5x:1m30s,1.5x"},
		// Scale stages.
		{"scale", "scale=1:2m,scale=3", KindScale,
			[]Stage{{1, 2 * time.Minute, false}, {3, 0, false}}, "scale=1:2m,scale=3"},
		// Hours print short.
		{"hours", "2x:1h~,1x", KindSpeed,
			[]Stage{{2, time.Hour, true}, {1, 0, false}}, "2x:1h~,1x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind() != tt.kind {
				t.Errorf("kind %v, want %v", r.Kind(), tt.kind)
			}
			got := r.Stages()
			if len(got) != len(tt.want) {
				t.Fatalf("stages %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("stage %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if r.String() != tt.text {
				t.Errorf("String() = %q, want %q", r.String(), tt.text)
			}
			again, err := Parse(r.String())
			if err != nil || again.String() != r.String() {
				t.Errorf("round trip %q: %v %v", r.String(), again, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // a part of the message that names the fix
	}{
		// Nothing given.
		{"empty", "", "give stages"},
		// A stage without "x" or "scale=".
		{"no unit", "2:1m,3x", "write a speed like 2x"},
		// The last stage runs to the end.
		{"last with duration", "1x:2m,2x:2m", `write "2x"`},
		// A middle stage needs a duration.
		{"middle without duration", "1x,2x", "only the last stage"},
		// Unknown duration syntax.
		{"bad duration", "1x:2 minutes,2x", "write it like 30s"},
		// Sub-second stages are a mistake.
		{"short", "1x:10ms,2x", "at least a second"},
		// Speed bounds.
		{"too fast", "1x:1m,1000x", "outside"},
		{"zero speed", "0x:1m,1x", "outside"},
		{"nan", "NaNx", "not a number"},
		// Scale must be whole.
		{"fraction scale", "scale=1.5:1m,scale=2", "whole number"},
		// Mixing kinds in one ramp.
		{"mixed", "1x:1m,scale=2", "give --ramp once for speed"},
		// A trailing comma.
		{"trailing comma", "1x:1m,", "extra"},
		// "~" on the last stage has nothing to move towards.
		{"linear last", "1x:1m,2x~", "goes after a stage's duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.in)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func sec(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func TestDueOffset(t *testing.T) {
	tests := []struct {
		name    string
		ramp    string
		offset  time.Duration // recording offset
		wall    time.Duration // its due wall time
		speed   float64       // speed in force at wall
		stage   int
		stageNm string
	}{
		// Inside the first stepped stage time passes at 1x.
		{"stepped first", "1x:2m,2x:2m,5x:5m,10x", sec(60), sec(60), 1, 0, "1x:2m"},
		// Second stage: 120 s of recording at 1x, then 80 s at 2x take 40 s.
		{"stepped second", "1x:2m,2x:2m,5x:5m,10x", sec(200), sec(160), 2, 1, "2x:2m"},
		// Stage boundary: 120 + 240 = 360 s of recording by wall 240 s.
		{"stepped boundary", "1x:2m,2x:2m,5x:5m,10x", sec(360), sec(240), 5, 2, "5x:5m"},
		// Last stage: 1860 s by wall 540 s, then 10x.
		{"stepped last", "1x:2m,2x:2m,5x:5m,10x", sec(1960), sec(550), 10, 3, "10x"},
		// Linear 1x->5x over 120 s: offset(60) = 60 + (4/120)*60²/2 = 120.
		{"linear mid", "1x:2m~,5x", sec(120), sec(60), 3, 0, "1x:2m~"},
		// End of the linear stage: 120*(1+5)/2 = 360.
		{"linear end", "1x:2m~,5x", sec(360), sec(120), 5, 1, "5x"},
		// After the linear stage, 5x.
		{"linear after", "1x:2m~,5x", sec(460), sec(140), 5, 1, "5x"},
		// Slowing down: 5x->1x over 10 s; offset(5) = 25 - 0.4*25/2 = 20.
		{"linear down", "5x:10s~,1x", sec(20), sec(5), 3, 0, "5x:10s~"},
		// Zero is zero.
		{"zero", "2x:1m~,4x", 0, 0, 2, 0, "2x:1m~"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.ramp)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Due(tt.offset); absDur(got-tt.wall) > time.Microsecond {
				t.Errorf("Due(%v) = %v, want %v", tt.offset, got, tt.wall)
			}
			if got := r.Offset(tt.wall); absDur(got-tt.offset) > time.Microsecond {
				t.Errorf("Offset(%v) = %v, want %v", tt.wall, got, tt.offset)
			}
			if got := r.Speed(tt.wall); math.Abs(got-tt.speed) > 1e-9 {
				t.Errorf("Speed(%v) = %v, want %v", tt.wall, got, tt.speed)
			}
			i, name := r.StageAt(tt.wall)
			if i != tt.stage || name != tt.stageNm {
				t.Errorf("StageAt(%v) = %d %q, want %d %q", tt.wall, i, name, tt.stage, tt.stageNm)
			}
		})
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestDueInverse checks Due and Offset are inverse and monotonic on many
// points of several ramps, to the nanosecond rounding.
func TestDueInverse(t *testing.T) {
	for _, s := range []string{"1x:2m,2x:2m,5x:5m,10x", "1x:2m~,5x:1m~,0.1x:30s,100x", "10x:1h~,0.1x", "7x"} {
		r, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		var prev time.Duration
		for o := time.Duration(0); o < 3*time.Hour; o += 7919 * time.Millisecond {
			w := r.Due(o)
			if w < prev {
				t.Fatalf("%s: Due not monotonic at %v: %v < %v", s, o, w, prev)
			}
			prev = w
			if back := r.Offset(w); absDur(back-o) > time.Duration(200*r.Speed(w))+10 {
				t.Fatalf("%s: Offset(Due(%v)) = %v", s, o, back)
			}
		}
	}
}

func TestPlan(t *testing.T) {
	r, _ := Parse("1x:2m,2x:2m,5x:5m,10x")
	// A 10-minute recording: 2m at 1x, 4m at 2x (2m wall), 4m left at 5x (48s).
	p := r.Plan(10 * time.Minute)
	if len(p) != 3 {
		t.Fatalf("plan has %d stages, want 3: %+v", len(p), p)
	}
	if p[2].Start != 4*time.Minute || p[2].End != 4*time.Minute+48*time.Second || p[2].To != 10*time.Minute {
		t.Errorf("last stage %+v", p[2])
	}
	if p[0].From != 0 || p[0].To != 2*time.Minute || p[1].To != 6*time.Minute {
		t.Errorf("plan %+v", p)
	}
	lin, _ := Parse("1x:2m~,5x")
	lp := lin.Plan(time.Minute)
	if len(lp) != 1 || lp[0].EndValue <= 1 || lp[0].EndValue >= 5 {
		t.Errorf("linear plan %+v", lp)
	}
}

func TestActiveFrom(t *testing.T) {
	tests := []struct {
		name string
		ramp string
		k    int
		at   time.Duration
		ok   bool
	}{
		// Clone 0 is the original session: always on.
		{"original", "scale=1:1m,scale=3", 0, 0, true},
		// Clones 1 and 2 join when the scale steps to 3.
		{"stepped", "scale=1:1m,scale=3", 2, time.Minute, true},
		// Clone 3 never joins a ramp that ends at 3.
		{"never", "scale=1:1m,scale=3", 3, 0, false},
		// Linear 1->5 over 40 s: scale passes 2 at 10 s.
		{"linear", "scale=1:40s~,scale=5", 2, 10*time.Second + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.ramp)
			if err != nil {
				t.Fatal(err)
			}
			at, ok := r.ActiveFrom(tt.k)
			if at != tt.at || ok != tt.ok {
				t.Errorf("ActiveFrom(%d) = %v %v, want %v %v", tt.k, at, ok, tt.at, tt.ok)
			}
		})
	}
}

func TestFlag(t *testing.T) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	var rf Flag
	var mode Mode
	var rt Rate
	fs.Var(&rf, "ramp", "stages")
	fs.Var(&mode, "ramp-mode", "mode")
	fs.Var(&rt, "rate", "cap")
	err := fs.Parse([]string{"--ramp", "1x:1m,3x", "--ramp", "scale=1:30s,scale=2", "--ramp-mode", "linear", "--rate", "6000/m"})
	if err != nil {
		t.Fatal(err)
	}
	if rf.Speed.String() != "1x:1m,3x" || rf.Scale.String() != "scale=1:30s,scale=2" {
		t.Errorf("flag %q", rf.String())
	}
	if got := rf.Speed.WithMode(mode).String(); got != "1x:1m~,3x" {
		t.Errorf("linear mode gives %q", got)
	}
	if rt.PerSecond != 100 {
		t.Errorf("rate %v", rt.PerSecond)
	}
	// A second speed ramp is a command-line mistake caught at parse time.
	fs2 := flag.NewFlagSet("replay", flag.ContinueOnError)
	var rf2 Flag
	fs2.Var(&rf2, "ramp", "stages")
	fs2.SetOutput(new(strings.Builder))
	if err := fs2.Parse([]string{"--ramp", "1x", "--ramp", "2x"}); err == nil || !strings.Contains(err.Error(), "already given") {
		t.Errorf("two speed ramps: %v", err)
	}
	var m Mode
	if err := m.Set("wavy"); err == nil || !strings.Contains(err.Error(), "step or linear") {
		t.Errorf("bad mode: %v", err)
	}
}
