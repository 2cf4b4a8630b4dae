package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// diffConfig names members whose lower-case forms hold 'i' and 'k', the
// letters non-ASCII runes lower-case to, beside the defaults.
var diffConfig = Config{JSONFields: []string{"access_token", "Kind", "ID"}}

// checkSame runs the scanner and the reference on in and fails on any
// difference: the bytes, whether they changed, the rules hit, and the
// error where the reference has one. It also checks that the pre-check never skips
// a body the reference would change.
func checkSame(t *testing.T, r *Redactor, in []byte) {
	t.Helper()
	var gotHits, wantHits []string
	got, gotChanged, gotErr := r.redactJSON(in, func(h string) { gotHits = append(gotHits, h) })
	want, wantChanged, wantErr := r.redactJSONReference(in, func(h string) { wantHits = append(wantHits, h) })
	if !bytes.Equal(got, want) || gotChanged != wantChanged || !reflect.DeepEqual(gotHits, wantHits) {
		t.Fatalf("scanner and reference differ on\n%q\ngot  %q %v %q\nwant %q %v %q", in, got, gotChanged, gotHits, want, wantChanged, wantHits)
	}
	// The reference's tokenizer ends quietly (io.EOF) when input stops
	// between tokens, even inside an object; the scanner reports every
	// truncation. Otherwise they fail alike.
	if wantErr != nil && gotErr == nil || json.Valid(in) && gotErr != nil {
		t.Fatalf("errors differ on %q: got %v, want %v", in, gotErr, wantErr)
	}
	if wantChanged && !r.mayHaveJSONKey(in) {
		t.Fatalf("pre-check skips %q, which the reference redacts", in)
	}
}

func TestJSONMatchesReference(t *testing.T) {
	r := newTest(t, diffConfig)
	tests := []struct {
		name, in string
	}{
		{"nested", `{"a": {"password" :  "p1", "n":[{"client_secret":"c"}]}, "b":2}`},                   // any depth
		{"non-string values", `{"password":{"n":[1,{"pwd":2}]},"pwd":-1.5e+3,"passwd":null,"id":true}`}, // hashed as raw text; null kept
		{"escaped key", `{"pass\u0077ord":"x","PASSWORD":"y"}`},                                         // names decoded and folded
		{"dotted capital I", "{\"\u0130d\":\"x\",\"\u212aind\":\"y\"}"},                                 // İ and K lower-case to ASCII
		{"other non-ASCII key", "{\"pässword\":\"x\",\"\xff\":1}"},                                      // no match, invalid UTF-8 too
		{"stream", `{"password":"a"} [{"pwd":"b"}] 3 "x"`},                                              // top-level values in a row
		{"truncated value", `{"password":"p1","pwd":"ab`},                                               // redacted before the cut
		{"truncated number", `{"password":12`},                                                          // a number ends at the end
		{"number then junk", `{"password":01}`},                                                         // "0" is the value, then an error
		{"missing colon", `{"password" "x"}`},                                                           // nothing
		{"trailing comma", `{"password":"x",}`},                                                         // redacted, then an error
		{"array trailing comma", `[{"pwd":"x"},]`},                                                      // same
		{"bad escape in value", `{"password":"\x"}`},                                                    // the value fails: nothing
		{"control character", "{\"password\":\"a\nb\"}"},                                                // same
		{"empty", ``},         // nothing to do
		{"spaces", " \t\r\n"}, // same
		{"already hashed", `{"password":"rdct_AAAAAAAAAAAAAAAA"}`},                                                    // not hashed twice
		{"empty string", `{"password":""}`},                                                                           // kept
		{"deep", strings.Repeat("[", 200) + `{"pwd":1}` + strings.Repeat("]", 200)},                                   // past the bit stack's first 64
		{"too deep a value", `{"pwd":` + strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1) + `}`}, // the decoder's limit
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSame(t, r, []byte(tt.in))
		})
	}
}

// FuzzJSONReference checks the scanner against the tokenizer-based
// implementation it replaced, byte for byte, on any input.
func FuzzJSONReference(f *testing.F) {
	for _, s := range []string{`{"password":"x"}`, `[{"a":{"pwd":[1,2]}},"password"]`, `{"password":`, `{"password":"\ud800"}`, `1`,
		`{"client_secret":{"password":"y"}}`, "{\"password\" \n:\t\"a\"}", `{"Kind":1e5,"id":[true,false,null]}`, "{\"\u212aind\":\"k\"}"} {
		f.Add([]byte(s))
	}
	r := newTest(f, diffConfig)
	f.Fuzz(func(t *testing.T, in []byte) {
		checkSame(t, r, in)
	})
}

// FuzzJSONGenerated compares the two on random valid JSON built from the
// seed, whole and cut at a chosen offset, which random bytes seldom reach.
func FuzzJSONGenerated(f *testing.F) {
	for i := range 8 {
		f.Add(uint64(i), uint16(i*37))
	}
	r := newTest(f, diffConfig)
	f.Fuzz(func(t *testing.T, seed uint64, cut uint16) {
		doc := genJSON(rand.New(rand.NewPCG(seed, 1)))
		if !json.Valid(doc) {
			t.Fatalf("generator made invalid JSON %q", doc)
		}
		checkSame(t, r, doc)
		checkSame(t, r, doc[:int(cut)%(len(doc)+1)])
	})
}

func TestJSONGenerated(t *testing.T) {
	r := newTest(t, diffConfig)
	for seed := range uint64(2000) {
		doc := genJSON(rand.New(rand.NewPCG(seed, 1)))
		checkSame(t, r, doc)
		checkSame(t, r, doc[:int(seed*7919)%(len(doc)+1)])
	}
}

// genKeys mixes names the rules cover, in several spellings, with names
// they do not.
var genKeys = []string{
	`"password"`, `"Password"`, `"PWD"`, `"pass\u0077ord"`, `"client_secret"`, `"access_token"`, `"kind"`, "\"\u212aind\"", "\"\u0130D\"",
	`"id"`, `"name"`, `"items"`, `"passwords"`, `"pass"`, `"x\"y"`, `""`, "\"p\u00e4ss\"", `"a\/b"`,
}

func genJSON(rng *rand.Rand) []byte {
	var b bytes.Buffer
	genValue(&b, rng, 0)
	return b.Bytes()
}

func genSpace(b *bytes.Buffer, rng *rand.Rand) {
	if rng.IntN(4) == 0 {
		b.WriteString([]string{" ", "\n", "\t ", "\r\n  "}[rng.IntN(4)])
	}
}

func genValue(b *bytes.Buffer, rng *rand.Rand, depth int) {
	genSpace(b, rng)
	k := rng.IntN(10)
	if depth > 5 {
		k = 4 + rng.IntN(6)
	}
	switch k {
	case 0, 1, 2:
		b.WriteByte('{')
		for i, n := 0, rng.IntN(5); i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			genSpace(b, rng)
			b.WriteString(genKeys[rng.IntN(len(genKeys))])
			genSpace(b, rng)
			b.WriteByte(':')
			genValue(b, rng, depth+1)
		}
		genSpace(b, rng)
		b.WriteByte('}')
	case 3:
		b.WriteByte('[')
		for i, n := 0, rng.IntN(4); i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			genValue(b, rng, depth+1)
		}
		b.WriteByte(']')
	case 4, 5:
		b.WriteString([]string{`"v"`, `""`, `"rdct_AAAAAAAAAAAAAAAA"`, `"a\"b\\c\u00e9\n"`, "\"\u00fcber\"", `"\ud800"`, `"password"`}[rng.IntN(7)])
	case 6, 7:
		b.WriteString([]string{"0", "-1", "12.5", "1e9", "-0.0E-2", "123456789012345678901234567890"}[rng.IntN(6)])
	default:
		b.WriteString([]string{"true", "false", "null"}[rng.IntN(3)])
	}
	genSpace(b, rng)
}

// TestPrecheck covers the bodies the pre-check lets through or skips.
func TestPrecheck(t *testing.T) {
	r := newTest(t, Config{})
	tests := []struct {
		name, in string
		maybe    bool
	}{
		{"quoted name", `{"password":"x"}`, true},                            // the plain case
		{"any case", `{"PassWord":"x"}`, true},                               // ASCII letters fold
		{"no name", `{"user":"ann","items":[1,2]}`, false},                   // skipped
		{"name unquoted", `{"note":"my password is long"}`, false},           // not a quoted string
		{"longer name", `{"passwords":1}`, false},                            // not the name
		{"escape anywhere", `{"a":"\n"}`, true},                              // an escape could spell a name
		{"dotted capital I", "{\"cl\u0130ent_secret\":\"x\"}", true},         // folds to client_secret
		{"quote at the end", `{"a":"`, false},                                // no room for a name
		{"name at the end", `"password`, false},                              // not closed
		{"value named like key", `["password"]`, true},                       // a string, not a key: scanned, unchanged
		{"client secret", `{"a":{"Client_Secret":null}}`, true},              // any depth
		{"other non-ASCII", "{\"p\u00e4ssword\":\"x\",\"\u00fc\":1}", false}, // cannot fold to a name
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.mayHaveJSONKey([]byte(tt.in)); got != tt.maybe {
				t.Fatalf("mayHaveJSONKey(%q) = %v, want %v", tt.in, got, tt.maybe)
			}
		})
	}
}

// TestPrecheckFindsEveryName puts every name of the default rules and of
// custom ones (common letters only, digits, a one-letter name) into
// bodies in three cases and at the start, middle and end of a body: the
// pre-check must let each through, and skip the same bodies with the name
// cut short, whatever byte it searches for.
func TestPrecheckFindsEveryName(t *testing.T) {
	r := newTest(t, Config{JSONFields: []string{"tenant", "x2", "q", "session-id"}})
	title := func(s string) string { return strings.ToUpper(s[:1]) + s[1:] }
	for name := range r.json {
		for _, v := range []string{name, strings.ToUpper(name), title(name)} {
			for _, in := range []string{`{"` + v + `":"x"}`, `{"items":[{"id":1,"` + v + `":2}]}`, `["a","` + v + `"]`} {
				if !r.mayHaveJSONKey([]byte(in)) {
					t.Errorf("mayHaveJSONKey(%q) = false", in)
				}
				if cut := strings.Replace(in, v, v[:len(v)-1], 1); !r.json[strings.ToLower(v[:len(v)-1])] && r.mayHaveJSONKey([]byte(cut)) {
					t.Errorf("mayHaveJSONKey(%q) = true", cut)
				}
			}
		}
	}
}

// apiBodies is realistic JSON API traffic: product listings and order
// payloads without secrets, and a login and a token response with them.
func apiBodies() (plain, secret [][]byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 64 {
		var b strings.Builder
		b.WriteString(`{"items":[`)
		for j, n := 0, 5+rng.IntN(20); j < n; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":%d,"sku":"SKU-%06d","name":"Product %d, size %d","price":%d.%02d,"tags":["new","sale"],"stock":{"warehouse":"w%d","count":%d},"description":"A sturdy item for everyday use; ships in 2 days."}`,
				i*100+j, rng.IntN(1e6), j, rng.IntN(50), rng.IntN(500), rng.IntN(100), rng.IntN(9), rng.IntN(1000))
		}
		fmt.Fprintf(&b, `],"page":%d,"total":%d,"next":"/api/items?page=%d"}`, i, 1000+i, i+1)
		plain = append(plain, []byte(b.String()))
	}
	secret = [][]byte{
		[]byte(`{"username":"user-0042","password":"correct horse battery staple","remember":true}`),
		[]byte(`{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl","token_type":"Bearer","expires_in":300,"refresh_token":"r-8f14e45fceea167a5a36dedd4bea2543","client_secret":"s3cr3t"}`),
	}
	return plain, secret
}

// BenchmarkRedactJSON measures Apply on JSON exchanges (impl=apply),
// bodies with and without the default fields, on one core, beside the
// scanner alone and the tokenizer-based reference; bytes are body bytes.
//
//	go test ./capture/redact -run XXX -bench RedactJSON -cpu 1
func BenchmarkRedactJSON(b *testing.B) {
	plain, secret := apiBodies()
	mixed := append(append([][]byte(nil), plain...), secret...)
	for _, tc := range []struct {
		name   string
		bodies [][]byte
	}{{"plain", plain}, {"secret", secret}, {"mixed", mixed}} {
		for _, impl := range []string{"apply", "scanner", "reference"} {
			b.Run("bodies="+tc.name+"/impl="+impl, func(b *testing.B) {
				r := newTest(b, Config{})
				var size int64
				for _, body := range tc.bodies {
					size += int64(len(body))
				}
				b.SetBytes(size)
				b.ReportAllocs()
				reportCPU(b)
				hd := session.Headers{hdr("Content-Type", "application/json")}
				for i := 0; i < b.N; i++ {
					for _, body := range tc.bodies {
						switch impl {
						case "reference": // the tokenizer it replaced
							r.redactJSONReference(body, func(string) {})
							continue
						case "scanner": // the scan without the pre-check
							r.redactJSON(body, func(string) {})
							continue
						}
						x := session.Exchange{Request: session.Request{Method: "POST", Target: "/api/orders", Header: hd, Body: body, BodySize: int64(len(body))}}
						r.Apply(&x)
					}
				}
			})
		}
	}
}

// BenchmarkApplyGET measures Apply on a bodiless API request with a query,
// a bearer token and cookies, and a JSON answer without secrets: the
// common exchange, whose cost is the headers', the query's and the
// pre-check's.
//
//	go test ./capture/redact -run XXX -bench ApplyGET -cpu 1
func BenchmarkApplyGET(b *testing.B) {
	plain, _ := apiBodies()
	r := newTest(b, Config{})
	reqH := session.Headers{hdr("Host", "shop.example"), hdr("User-Agent", "sim/1.0"), hdr("Accept", "application/json"),
		hdr("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl"), hdr("Cookie", "SESSIONID=abc123; theme=dark")}
	respH := session.Headers{hdr("Content-Type", "application/json"), hdr("Date", "Thu, 26 Nov 2026 01:00:00 GMT"), hdr("Content-Length", fmt.Sprint(len(plain[0])))}
	b.SetBytes(int64(len(plain[0])))
	b.ReportAllocs()
	reportCPU(b)
	for i := 0; i < b.N; i++ {
		x := session.Exchange{
			Request:  session.Request{Method: "GET", Target: "/api/items?page=3&sort=price", Header: reqH},
			Response: session.Response{Status: 200, Header: respH, Body: plain[0], BodySize: int64(len(plain[0]))},
		}
		r.Apply(&x)
	}
}
