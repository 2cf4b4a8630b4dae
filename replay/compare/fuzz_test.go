package compare

import (
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// FuzzCompareJSON: any two bodies compare without panicking, a body equals
// itself, and every difference names a path.
func FuzzCompareJSON(f *testing.F) {
	f.Add([]byte(`{"a":1}`), []byte(`{"a":2}`))
	f.Add([]byte(`[1,{"b":[null,true]}]`), []byte(`[1,{"b":[false]}]`))
	f.Add([]byte(`{"a b":{"c":"2026-11-26T01:00:00Z"}}`), []byte(`{"a b":{"c":"x"}}`))
	f.Add([]byte(`{"x":1e400}`), []byte(`{"x":1.0}`))
	f.Add([]byte(`not json`), []byte(`{}`))
	c, err := New(WithIgnore("$.items[*].u", `$["a b"].*`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		pa := &session.Response{Status: 200, Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: a, BodySize: int64(len(a))}
		pb := &session.Response{Status: 200, Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: b, BodySize: int64(len(b))}
		for _, d := range c.Diff(pa, pb, nil) {
			if d.Path == "" || d.Kind == "" {
				t.Fatalf("difference without a path or kind: %+v", d)
			}
		}
		if ds := c.Diff(pa, pa, nil); len(ds) != 0 {
			t.Fatalf("a body differs from itself: %+v", ds)
		}
		c.Observe("GET /", c.Diff(pa, pb, nil))
		_ = c.Report()
	})
}

// FuzzIgnorePattern: any --ignore text is accepted or refused without
// panicking, and an accepted pattern matches any path without panicking.
func FuzzIgnorePattern(f *testing.F) {
	for _, s := range []string{"$.items[*].updated_at", `$["a b"].c`, "$.a.*", "$[", `$["x`, "Date", "$..a", "$[99999999999999999999]", "1.3[*].2", "[*].4", "9["} {
		f.Add(s, `$.items[3]["a b"].c`)
	}
	f.Fuzz(func(t *testing.T, pat, path string) {
		c, err := New(WithIgnore(pat))
		if err != nil {
			return
		}
		for _, p := range c.opts.ignore {
			p.covers([]byte(path))
		}
	})
}
