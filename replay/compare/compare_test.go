package compare

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

func jsonResp(status int, body string) *session.Response {
	return &session.Response{Status: status, Header: session.Headers{{Name: "Content-Type", Value: "application/json"}},
		Body: []byte(body), BodySize: int64(len(body))}
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func paths(ds []Difference) []string {
	var out []string
	for _, d := range ds {
		v := ""
		if d.Volatile {
			v = "~"
		}
		out = append(out, string(d.Kind)+":"+d.Path+v)
	}
	return out
}

func TestDiff(t *testing.T) {
	gzResp := &session.Response{Status: 200, Header: session.Headers{{Name: "Content-Type", Value: "application/json"}, {Name: "Content-Encoding", Value: "gzip"}}}
	gzResp.Body = gz(`{"a":1}`)
	gzResp.BodySize = int64(len(gzResp.Body))
	cases := []struct {
		name string
		p, s *session.Response
		eq   Equivalent
		opts []Option
		want []string
	}{
		// Identical answers have no differences.
		{name: "same", p: jsonResp(200, `{"a":1,"b":[1,2]}`), s: jsonResp(200, `{"b":[1,2],"a":1}`)},
		// A changed leaf is named by its path, arrays by index.
		{name: "value", p: jsonResp(200, `{"items":[{"price":1},{"price":2}]}`), s: jsonResp(200, `{"items":[{"price":1},{"price":3}]}`),
			want: []string{"value:$.items[1].price"}},
		// Missing and extra fields, and a type change.
		{name: "shape", p: jsonResp(200, `{"a":1,"b":"x","c":[1]}`), s: jsonResp(200, `{"a":"1","c":[1,2],"d":null}`),
			want: []string{"type:$.a", "missing:$.b", "extra:$.c[1]", "extra:$.d"}},
		// Numbers compare by value.
		{name: "numbers", p: jsonResp(200, `{"a":1.0,"b":1e2}`), s: jsonResp(200, `{"a":1,"b":100}`)},
		// Status and a chosen header.
		{name: "status", p: jsonResp(200, `{}`), s: &session.Response{Status: 500, Header: session.Headers{{Name: "Content-Type", Value: "text/plain"}}, Body: []byte("{}"), BodySize: 2},
			want: []string{"status:status", "header:header:Content-Type"}},
		// Timestamps, UUIDs, JWT-like and random ids are volatile.
		{name: "volatile", p: jsonResp(200, `{"created_at":"2026-11-26T01:00:00Z","id":"ord_3f2a9c81","u":"6f1c2a3e-0b1d-4c5e-9f00-112233445566","ts":1764118800}`),
			s:    jsonResp(200, `{"created_at":"2026-11-26T01:00:05.123Z","id":"ord_77b0e5d2","u":"00000000-1111-2222-3333-444455556666","ts":1764118805}`),
			want: []string{"value:$.created_at~", "value:$.id~", "value:$.ts~", "value:$.u~"}},
		// Without heuristics the same differences count.
		{name: "no heuristics", p: jsonResp(200, `{"id":"ord_3f2a9c81"}`), s: jsonResp(200, `{"id":"ord_77b0e5d2"}`),
			opts: []Option{WithHeuristics(false)}, want: []string{"value:$.id"}},
		// A short changed value is not volatile: prices are not ids.
		{name: "price", p: jsonResp(200, `{"price_cents":1999}`), s: jsonResp(200, `{"price_cents":2099}`), want: []string{"value:$.price_cents"}},
		// Correlated values are equal.
		{name: "correlated", p: jsonResp(200, `{"token":"abc"}`), s: jsonResp(200, `{"token":"xyz"}`),
			eq: func(p, s string) bool { return p == "abc" && s == "xyz" }},
		// Ignore patterns with wildcards drop a path and everything below it.
		{name: "ignore", p: jsonResp(200, `{"items":[{"u":1,"v":1}],"meta":{"x":1}}`), s: jsonResp(200, `{"items":[{"u":2,"v":2}],"meta":{"x":2}}`),
			opts: []Option{WithIgnore("$.items[*].u", "$.meta")}, want: []string{"value:$.items[0].v"}},
		// A Location whose id differs in a volatile way matches.
		{name: "location", p: &session.Response{Status: 201, Header: session.Headers{{Name: "Location", Value: "/api/orders/ord_3f2a9c81"}}},
			s:    &session.Response{Status: 201, Header: session.Headers{{Name: "Location", Value: "/api/orders/ord_77b0e5d2"}}},
			want: []string{"header:header:Location~"}},
		// An ignored header is not compared.
		{name: "ignore header", p: &session.Response{Status: 200, Header: session.Headers{{Name: "Cache-Control", Value: "no-store"}}},
			s: &session.Response{Status: 200}, opts: []Option{WithIgnore("cache-control")}},
		// gzip is undone before comparing.
		{name: "gzip", p: gzResp, s: jsonResp(200, `{"a":1}`)},
		// Non-JSON bodies compare by hash and length.
		{name: "text", p: &session.Response{Status: 200, Body: []byte("hello"), BodySize: 5}, s: &session.Response{Status: 200, Body: []byte("hellO"), BodySize: 5},
			want: []string{"body:body"}},
		// A truncated body is not compared.
		{name: "truncated", p: &session.Response{Status: 200, Body: []byte("hel"), BodySize: 5}, s: &session.Response{Status: 200, Body: []byte("hellO"), BodySize: 5}},
		// Keys that are not identifiers are quoted.
		{name: "quoted key", p: jsonResp(200, `{"a b":1}`), s: jsonResp(200, `{"a b":2}`), want: []string{`value:$["a b"]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got := paths(c.Diff(tc.p, tc.s, tc.eq))
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestIgnoreParse(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"$.items[*].updated_at", true}, // wildcard index
		{`$["a b"].c`, true},            // quoted key
		{"$.a.*", true},                 // any key
		{"Date", true},                  // a header
		{"$.a[x]", false},               // not an index
		{"$..a", false},                 // recursive descent is not supported
		{"", false},                     // empty
		{"a b", false},                  // neither
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			_, err := New(WithIgnore(tc.in))
			if (err == nil) != tc.ok {
				t.Errorf("WithIgnore(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

// A path is reported only above its noise rate plus the margin, and with
// the minimum count.
func TestReportNoise(t *testing.T) {
	c, err := New(WithMinCount(3), WithMargin(0.1))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		p := jsonResp(200, fmt.Sprintf(`{"price":1,"nonce":%d,"rare":1}`, i))
		s := jsonResp(200, fmt.Sprintf(`{"price":2,"nonce":%d,"rare":%d}`, i+1, 1+btoi(i == 3)))
		c.Observe("GET /x", c.Diff(p, s, nil))
		// the same request twice to the shadow: nonce differs every time
		a := jsonResp(200, fmt.Sprintf(`{"price":2,"nonce":%d}`, i))
		b := jsonResp(200, fmt.Sprintf(`{"price":2,"nonce":%d}`, i+7))
		c.ObserveNoise("GET /x", c.Diff(a, b, nil))
	}
	c.Observe("GET /same", c.Diff(jsonResp(200, `{}`), jsonResp(200, `{}`), nil))
	r := c.Report()
	if got := r.Reported(); !slices.Equal(got, []string{"GET /x $.price"}) {
		t.Errorf("reported %q, want only GET /x $.price", got)
	}
	if r.Routes[0].Route != "GET /x" || r.Routes[0].Differing != 20 || r.Routes[0].Share != 1 {
		t.Errorf("route %+v", r.Routes[0])
	}
	var held []string
	for _, f := range r.Routes[0].Noise {
		held = append(held, f.Path+": "+f.Why)
	}
	want := []string{"$.nonce: within the noise rate plus margin", "$.rare: fewer than the minimum count"}
	if !slices.Equal(held, want) {
		t.Errorf("held back %q, want %q", held, want)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "$.price") || !strings.Contains(text.String(), `"1" -> "2"`) {
		t.Errorf("text:\n%s", text.String())
	}
	var html bytes.Buffer
	if err := r.WriteHTML(&html, "diff"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html.String(), "http://") || strings.Contains(html.String(), "https://") {
		t.Error("HTML refers to an external URL")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Examples are redacted with the given function and truncated.
func TestRedactExamples(t *testing.T) {
	c, _ := New(WithMinCount(1), WithRedact(func(s string) string { return "H(" + s + ")" }))
	c.Observe("GET /", c.Diff(jsonResp(200, `{"a":"secret","b":[1]}`), jsonResp(200, `{"a":"other","b":[1,2]}`), nil))
	r := c.Report()
	var got []string
	for _, f := range r.Routes[0].Fields {
		got = append(got, f.Examples[0].Primary+"|"+f.Examples[0].Shadow)
	}
	want := []string{"H(secret)|H(other)", "|H(2)"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("examples %q, want %q", got, want)
	}
}

func ExampleComparer() {
	c, _ := New(WithMinCount(1))
	primary := jsonResp(200, `{"id":"ord_3f2a9c81","total":1999,"created_at":"2026-11-26T01:00:00Z"}`)
	shadow := jsonResp(200, `{"id":"ord_77b0e5d2","total":2099,"created_at":"2026-11-26T01:00:02Z"}`)
	c.Observe("GET /api/orders/{id}", c.Diff(primary, shadow, nil))
	fmt.Println(c.Report().Reported())
	// Output:
	// [GET /api/orders/{id} $.total]
}
