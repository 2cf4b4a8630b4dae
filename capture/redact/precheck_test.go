package redact

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// quotedName is the pre-check's anchored search done the obvious way:
// whether one of names (the ASCII names of a jsonNames) is in body between quotes, ASCII
// letters in any case, looked for at every quote.
func quotedName(names []string, body []byte) bool {
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		for _, name := range names {
			e := i + 1 + len(name)
			if e < len(body) && body[e] == '"' && bytes.EqualFold(body[i+1:e], []byte(name)) {
				return true
			}
		}
	}
	return false
}

// mayHaveJSONKey is the pre-check redactPlain makes of a body that is no
// token exchange: whether body can hold a member named by a JSON rule. A
// name must appear as a quoted string (ASCII letters in any case), unless
// escapes or case-folding runes could spell it otherwise, in which case
// the body is scanned. False means redactJSON would change nothing.
func (r *Redactor) mayHaveJSONKey(body []byte) bool {
	return r.jsonNames.unusual(body) || r.jsonNames.anchored(body)
}

// ascii lists the ASCII names of n, the ones the anchored search is for.
func (n *jsonNames) ascii() []string {
	var out []string
	for name := range n.set {
		if isASCII(name) {
			out = append(out, name)
		}
	}
	return out
}

// precheckConfigs are name sets for the pre-check tests: the defaults,
// custom names of common letters only, digits, one letter and a dash
// beside them, and the single name of a token exchange's pre-check.
func precheckConfigs(t testing.TB) map[string]*jsonNames {
	r := newTest(t, Config{})
	c := newTest(t, Config{JSONFields: []string{"tenant", "x2", "q", "session-id", "rate", "Ärger"}, NoDefaults: true})
	return map[string]*jsonNames{"defaults": &r.jsonNames, "custom": &c.jsonNames, "code": &r.codeNames}
}

// denseFillers are bodies that meet the anchors often: the benchmark's
// listing ('r' of "price"), English text (every common letter), snake
// case ('_'), and runs of each rare anchor, so that searches give their
// anchors up, and their fallbacks too.
var denseFillers = []string{
	`{"id":1,"name":"item-42","price":12.50},`,
	`"Orders are shipped in two working days; returns are accepted for a month after delivery." `,
	`{"created_at":1,"updated_at":2,"unit_price":3,"tax_rate":4},`,
	`"kkKKwwWW__--ssSSnnNNoo" `,
	`"assertio" "ASSERTIO" "client_secre" "passwor" "toke" "apike" `,
}

// TestPrecheckDenseAnchors puts each name, in three cases, after a dense
// filler cut at every length up to 700 bytes (past the point where a
// search gives an anchor up, and where its fallback gives up in turn)
// and before more of it: the pre-check must find it wherever it sits, and
// agree with quotedName on the filler alone and with the name cut short.
func TestPrecheckDenseAnchors(t *testing.T) {
	for cfg, n := range precheckConfigs(t) {
		names := n.ascii()
		for _, filler := range denseFillers {
			long := strings.Repeat(filler, 700/len(filler)+2)
			if got, want := n.anchored([]byte(long)), quotedName(names, []byte(long)); got != want {
				t.Errorf("%s: anchored(filler %q) = %v, want %v", cfg, filler, got, want)
			}
			for _, name := range names {
				// Every place for the name as it is, every seventh for the
				// other cases and for the name cut short.
				for cut := 0; cut <= 700; cut++ {
					ins := []string{name}
					if cut%7 == 0 {
						ins = append(ins, strings.ToUpper(name), strings.ToUpper(name[:1])+name[1:], name[:len(name)-1])
					}
					for _, v := range ins {
						in := long[:cut] + `"` + v + `"` + long[cut:]
						if got, want := n.anchored([]byte(in)), quotedName(names, []byte(in)); got != want {
							t.Fatalf("%s: anchored(%q) = %v, want %v", cfg, in, got, want)
						}
					}
				}
			}
		}
	}
}

// TestPrecheckPlan checks the shape of the anchor plans: every ASCII name
// is under exactly one anchor, anchored where that byte first is in it,
// and each alternative anchor of a group is another byte every name of
// the group holds, anchored the same way.
func TestPrecheckPlan(t *testing.T) {
	for cfg, n := range precheckConfigs(t) {
		want := n.ascii()
		var got []string
		check := func(a *jsonAnchor) []string {
			var names []string
			for _, nm := range a.names {
				names = append(names, nm.name)
				if nm.off != strings.IndexByte(nm.name, a.c) {
					t.Errorf("%s: %q anchored on %q at %d", cfg, nm.name, a.c, nm.off)
				}
			}
			slices.Sort(names)
			return names
		}
		for _, a := range n.anchors {
			names := check(&a)
			got = append(got, names...)
			for _, alt := range a.alts {
				if alt.c == a.c || len(alt.alts) > 0 {
					t.Errorf("%s: alternative %q of %q", cfg, alt.c, a.c)
				}
				if again := check(&alt); !slices.Equal(again, names) {
					t.Errorf("%s: alternative %q of %q covers %q, want %q", cfg, alt.c, a.c, again, names)
				}
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: plan covers %q, want %q", cfg, got, want)
		}
	}
	// The benchmark's case: "assertion" has no rare byte; the plan has
	// others for when its anchor turns out dense.
	for _, a := range precheckConfigs(t)["defaults"].anchors {
		for _, nm := range a.names {
			if nm.name == "assertion" && len(a.alts) < 7 {
				t.Errorf("assertion anchored on %q with alternatives %d", a.c, len(a.alts))
			}
		}
	}
}

// FuzzPrecheck compares the anchored search with quotedName on any body,
// for each name set. The seeds are dense in anchors, with names past the
// point where searches give up.
func FuzzPrecheck(f *testing.F) {
	for _, filler := range denseFillers {
		long := strings.Repeat(filler, 8)
		f.Add([]byte(long))
		f.Add([]byte(long + `"Assertion"` + long))
		f.Add([]byte(long + `"client_SECRET":1`))
		f.Add([]byte(long + `"pwd"` + long))
		f.Add([]byte(long + `"Rate"` + long))
	}
	f.Add([]byte(`"token"`))
	f.Add([]byte(`"`))
	f.Add([]byte(``))
	ns := precheckConfigs(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for cfg, n := range ns {
			names := n.ascii()
			if got, want := n.anchored(body), quotedName(names, body); got != want {
				t.Fatalf("%s: anchored(%q) = %v, want %v", cfg, body, got, want)
			}
		}
	})
}
