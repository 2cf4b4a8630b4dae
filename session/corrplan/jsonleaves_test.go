package corrplan

import (
	"bytes"
	"encoding/json"
	"testing"
)

// decodedLeaves is what Fields read of JSON before jsonLeaves: the
// value decoded by encoding/json, then walked.
func decodedLeaves(doc []byte) (map[string]Field, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	out := map[string]Field{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(path+"["+itoa(i)+"]", e)
			}
		case string:
			out[path] = Field{Value: x}
		case json.Number:
			out[path] = Field{Value: x.String(), Number: true}
		}
	}
	walk("json:", v)
	return out, true
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// checkLeaves: jsonLeaves accepts what encoding/json decodes, rejects
// what it rejects, and finds every leaf it does with the same value (it
// may find more where an object repeats a key: the decoder keeps the
// last member alone).
func checkLeaves(t *testing.T, doc []byte) {
	want, wok := decodedLeaves(doc)
	var got fieldSet
	gok := jsonLeaves(doc, "json:", &got)
	if gok != wok {
		t.Fatalf("%q: jsonLeaves %v, encoding/json %v", doc, gok, wok)
	}
	if !gok {
		return
	}
	for k, w := range want {
		if g, ok := got.m[k]; !ok || g != w {
			t.Fatalf("%q: %s = %+v (found %v), want %+v", doc, k, g, ok, w)
		}
	}
}

var leafSeeds = []string{
	`{"ok":true,"id":"4d60a3f0cc6d9c8a9baff7a65d00e7e9"}`,
	`{"items":[{"sku":"SKU-00001","price":10.99},{"sku":"SKU-00002","price":-1e+3}],"n":null}`,
	` [1, "a\u00e9\"b", [[]], {}, {"x\\y":"\ud83d\ude00"}] trailing`,
	`{"a":{"b":"x"},"a":"y"}`,
	`{"bad":"\xff\xfe"}`,
	`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":"x`, `{"a" 1}`, `[1,]`, `{,}`, `tru`, `"\x01"`,
	`{"deep":` + string(bytes.Repeat([]byte("["), 100)) + string(bytes.Repeat([]byte("]"), 100)) + `}`,
}

func TestJSONLeaves(t *testing.T) {
	for _, s := range leafSeeds {
		checkLeaves(t, []byte(s))
	}
}

func FuzzJSONLeaves(f *testing.F) {
	for _, s := range leafSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkLeaves)
}
