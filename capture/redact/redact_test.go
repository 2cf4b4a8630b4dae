package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func newTest(t testing.TB, cfg Config) *Redactor {
	t.Helper()
	cfg.Secret = testSecret
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHashStable(t *testing.T) {
	r := newTest(t, Config{})
	a, b := r.Hash("tok"), r.Hash("tok")
	if a != b || !IsHash(a) {
		t.Fatalf("Hash not stable or not recognisable: %q %q", a, b)
	}
	if a == r.Hash("tok2") {
		t.Fatal("different values hash equal")
	}
	other, _ := New(Config{Secret: []byte("another secret of enough length")})
	if other.Hash("tok") == a {
		t.Fatal("hash does not depend on the secret")
	}
	gen1, _ := New(Config{})
	gen2, _ := New(Config{})
	if gen1.Hash("tok") == gen2.Hash("tok") {
		t.Fatal("generated secrets are equal")
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{Secret: []byte("short")}); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := New(Config{Headers: []string{" "}}); err == nil {
		t.Error("empty header name accepted")
	}
}

func TestHeaders(t *testing.T) {
	// The named rules alone: the defaults (TestDefaults) would hash
	// every cookie.
	r := newTest(t, Config{Headers: []string{"x-api-key", "Authorization"}, Cookies: []string{"SESSIONID", "sid"}, NoDefaults: true})
	h := r.Hash
	tests := []struct {
		name     string
		in, want session.Header
		rule     string
	}{
		// A named header is hashed whole, its name's case kept.
		{"named header", hdr("X-API-Key", "k1"), hdr("X-API-Key", h("k1")), "header:x-api-key"},
		// Bearer keeps the scheme so the token can be followed.
		{"bearer", hdr("Authorization", "Bearer abc.def"), hdr("Authorization", "Bearer "+h("abc.def")), "header:authorization"},
		// Unnamed headers are untouched.
		{"other header", hdr("Accept", "text/html"), hdr("Accept", "text/html"), ""},
		// Only named cookies change; separators and others stay.
		{"cookie", hdr("Cookie", "theme=dark; SESSIONID=s1;sid=\"q\""), hdr("Cookie", "theme=dark; SESSIONID="+h("s1")+";sid=\""+h("q")+"\""), "cookie:sessionid"},
		// Set-Cookie attributes stay as they were.
		{"set-cookie", hdr("Set-Cookie", "SESSIONID=s1; Path=/; HttpOnly"), hdr("Set-Cookie", "SESSIONID="+h("s1")+"; Path=/; HttpOnly"), "cookie:sessionid"},
		// A Set-Cookie of another cookie is untouched.
		{"set-cookie other", hdr("Set-Cookie", "theme=dark"), hdr("Set-Cookie", "theme=dark"), ""},
		// An already hashed value is not hashed again.
		{"idempotent", hdr("X-Api-Key", h("k1")), hdr("X-Api-Key", h("k1")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &session.Exchange{Request: session.Request{Header: session.Headers{tt.in}}}
			changed := r.Apply(x)
			if got := x.Request.Header[0]; got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if changed != (tt.rule != "") || (x.Flags&session.FlagRedacted != 0) != changed {
				t.Fatalf("changed=%v flags=%v", changed, x.Flags)
			}
		})
	}
	if got := r.Redacted(); !reflect.DeepEqual(got, []string{"cookie:sessionid", "cookie:sid", "header:authorization", "header:x-api-key"}) {
		t.Errorf("Redacted() = %q", got)
	}
}

func TestBasicAuthDefault(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		in   string
		kept bool
	}{
		// Basic credentials are a password: hashed by default, scheme kept.
		{"basic default", Config{}, "Basic dXNlcjpwYXNz", false},
		// Bearer tokens are hashed by default too, scheme kept: the tracker
		// reads their claims before (Redactor.Claims).
		{"bearer default", Config{}, "Bearer abc", false},
		// NoDefaults keeps Basic too.
		{"no defaults", Config{NoDefaults: true}, "Basic dXNlcjpwYXNz", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTest(t, tt.cfg)
			x := &session.Exchange{Request: session.Request{Header: session.Headers{hdr("Authorization", tt.in)}}}
			r.Apply(x)
			got := x.Request.Header[0].Value
			if (got == tt.in) != tt.kept {
				t.Fatalf("got %q from %q, kept=%v", got, tt.in, tt.kept)
			}
			scheme, cred, _ := strings.Cut(tt.in, " ")
			if !tt.kept && got != scheme+" "+r.Hash(cred) {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestBodies(t *testing.T) {
	r := newTest(t, Config{JSONFields: []string{"access_token", "card"}, FormFields: []string{"token"}})
	h := r.Hash
	q := func(s string) string { return `"` + s + `"` }
	tests := []struct {
		name     string
		ct, enc  string
		in, want string
	}{
		// The default password field of a login form; other fields stay.
		{"form login", "application/x-www-form-urlencoded", "", "user=ann&password=s%3Dcret&x=1", "user=ann&password=" + h("s=cret") + "&x=1"},
		// Field names are matched decoded and without regard to case.
		{"form case", "application/x-www-form-urlencoded; charset=utf-8", "", "Pass%77ord=a&token=b", "Pass%77ord=" + h("a") + "&token=" + h("b")},
		// Empty values and fields without '=' stay.
		{"form empty", "application/x-www-form-urlencoded", "", "password=&password&&a=1", "password=&password&&a=1"},
		// JSON at any depth, bytes around kept exactly.
		{"json nested", "application/json", "", `{"a": {"password" :  "p1", "n":[{"client_secret":"c"}]}, "b":2}`, `{"a": {"password" :  ` + q(h("p1")) + `, "n":[{"client_secret":` + q(h("c")) + `}]}, "b":2}`},
		// A token in a login response is hashed like the same token in a header.
		{"json token", "application/vnd.api+json", "", `{"access_token":"abc","expires_in":300}`, `{"access_token":` + q(h("abc")) + `,"expires_in":300}`},
		// A non-string value becomes a string hash of its text; null stays.
		{"json non-string", "application/json", "", `{"card":{"n":1},"password":12345,"pwd":null}`, `{"card":` + q(h(`{"n":1}`)) + `,"password":` + q(h("12345")) + `,"pwd":null}`},
		// A value equal to a member name is not taken for a key.
		{"json value named like key", "application/json", "", `["password",{"x":"password"}]`, `["password",{"x":"password"}]`},
		// Escaped strings are hashed by their decoded text.
		{"json escapes", "application/json", "", `{"password":"a\u0062"}`, `{"password":` + q(h("ab")) + `}`},
		// Truncated JSON: values before the cut are still redacted.
		{"json truncated", "application/json", "", `{"password":"p1","x":"abc`, `{"password":` + q(h("p1")) + `,"x":"abc`},
		// JSON sent without a Content-Type is recognised by its first byte.
		{"json untyped", "", "", ` {"password":"p"}`, ` {"password":` + q(h("p")) + `}`},
		// Other content types are untouched.
		{"text", "text/plain", "", "password=x", "password=x"},
		// A compressed body cannot be read: untouched, with a warning.
		{"gzip", "application/json", "gzip", `{"password":"p"}`, `{"password":"p"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hd := session.Headers{hdr("Content-Type", tt.ct), hdr("Content-Length", fmt.Sprint(len(tt.in)))}
			if tt.enc != "" {
				hd = append(hd, hdr("Content-Encoding", tt.enc))
			}
			x := &session.Exchange{
				Request:  session.Request{Header: hd, Body: []byte(tt.in), BodySize: int64(len(tt.in))},
				Response: session.Response{Header: append(session.Headers(nil), hd...), Body: []byte(tt.in), BodySize: int64(len(tt.in))},
			}
			r.Apply(x)
			for _, half := range []struct {
				body []byte
				size int64
				h    session.Headers
			}{{x.Request.Body, x.Request.BodySize, x.Request.Header}, {x.Response.Body, x.Response.BodySize, x.Response.Header}} {
				if string(half.body) != tt.want {
					t.Fatalf("got  %s\nwant %s", half.body, tt.want)
				}
				if half.size != int64(len(tt.want)) || half.h.Get("Content-Length") != fmt.Sprint(len(tt.want)) {
					t.Fatalf("size %d, Content-Length %s, want %d", half.size, half.h.Get("Content-Length"), len(tt.want))
				}
			}
			if tt.enc != "" && len(x.Warnings) != 2 {
				t.Fatalf("warnings %q", x.Warnings)
			}
			if json.Valid([]byte(tt.in)) && !json.Valid(x.Request.Body) {
				t.Fatal("valid JSON became invalid")
			}
		})
	}
}

func TestTruncatedBodyKeepsSize(t *testing.T) {
	r := newTest(t, Config{})
	in := `{"password":"p1","more":"`
	x := &session.Exchange{
		Request: session.Request{Header: session.Headers{hdr("Content-Type", "application/json"), hdr("Content-Length", "1000")}, Body: []byte(in), BodySize: 1000},
		Flags:   session.FlagRequestTruncated,
	}
	r.Apply(x)
	want := int64(1000 + len(x.Request.Body) - len(in))
	if x.Request.BodySize != want || x.Request.Header.Get("Content-Length") != "1000" {
		t.Fatalf("BodySize %d (want %d), Content-Length %s (want the original)", x.Request.BodySize, want, x.Request.Header.Get("Content-Length"))
	}
}

func TestQuery(t *testing.T) {
	r := newTest(t, Config{FormFields: []string{"access_token"}})
	x := &session.Exchange{Request: session.Request{Target: "/feed?access_token=t1&page=2#top"}}
	r.Apply(x)
	if want := "/feed?access_token=" + r.Hash("t1") + "&page=2#top"; x.Request.Target != want {
		t.Fatalf("got %q, want %q", x.Request.Target, want)
	}
}

// TestEqualAcrossPlaces checks the property that lets sessions be followed:
// one token hashes the same in a JSON response, a header and a cookie.
func TestEqualAcrossPlaces(t *testing.T) {
	r := newTest(t, Config{Headers: []string{"Authorization"}, Cookies: []string{"tok"}, JSONFields: []string{"access_token"}})
	login := &session.Exchange{Response: session.Response{Header: session.Headers{hdr("Content-Type", "application/json")}, Body: []byte(`{"access_token":"T"}`)}}
	use := &session.Exchange{Request: session.Request{Header: session.Headers{hdr("Authorization", "Bearer T"), hdr("Cookie", "tok=T")}}}
	r.Apply(login)
	r.Apply(use)
	var got struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(login.Response.Body, &got); err != nil {
		t.Fatal(err)
	}
	if "Bearer "+got.AccessToken != use.Request.Header[0].Value || "tok="+got.AccessToken != use.Request.Header[1].Value {
		t.Fatalf("hashes differ: %q vs %q", got.AccessToken, use.Request.Header)
	}
}

func TestSecretNotInOutput(t *testing.T) {
	r := newTest(t, Config{})
	x := &session.Exchange{Request: session.Request{Header: session.Headers{hdr("Content-Type", "application/json")}, Body: []byte(`{"password":"hunter2"}`)}}
	r.Apply(x)
	if bytes.Contains(x.Request.Body, []byte("hunter2")) || bytes.Contains(x.Request.Body, testSecret) {
		t.Fatalf("secret or value leaked: %s", x.Request.Body)
	}
	if strings.Contains(fmt.Sprint(r.Rules(), r.Redacted()), "hunter2") {
		t.Fatal("value in report")
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"password":"x"}`, `[{"a":{"pwd":[1,2]}},"password"]`, `{"password":`, `{"password":"\ud800"}`, `1`, `{"client_secret":{"password":"y"}}`, "{\"password\" \n:\t\"a\"}"} {
		f.Add([]byte(s))
	}
	r := newTest(f, Config{})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, _ := r.redactJSON(in, func(string) {})
		if json.Valid(in) && !json.Valid(out) {
			t.Fatalf("valid JSON became invalid:\n%q\n%q", in, out)
		}
	})
}

func FuzzForm(f *testing.F) {
	for _, s := range []string{"password=x&a=b", "&&password=%zz", "password", "a=1&password=2&password=3&"} {
		f.Add([]byte(s))
	}
	r := newTest(f, Config{})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, changed := r.redactForm(in, func(string) {})
		if !changed && !bytes.Equal(in, out) {
			t.Fatal("unchanged but different")
		}
		if changed && bytes.Count(in, []byte("&")) != bytes.Count(out, []byte("&")) {
			t.Fatalf("field count changed:\n%q\n%q", in, out)
		}
	})
}

func ExampleRedactor_Apply() {
	r, _ := New(Config{Headers: []string{"Authorization"}, Secret: []byte("a per-recording secret, never stored")})
	x := &session.Exchange{Request: session.Request{
		Method: "POST", Target: "/login",
		Header: session.Headers{hdr("Authorization", "Bearer eyJhbGciOi"), hdr("Content-Type", "application/x-www-form-urlencoded")},
		Body:   []byte("user=ann&password=hunter2"),
	}}
	r.Apply(x)
	fmt.Println(x.Request.Header[0].Value)
	fmt.Println(string(x.Request.Body))
	fmt.Println(r.Redacted())
	// Output:
	// Bearer rdct_u4xah7DaAaapzPWv
	// user=ann&password=rdct_m_eVbjEGP3z-ZDUz
	// [form:password header:authorization]
}

func hdr(name, value string) session.Header { return session.Header{Name: name, Value: value} }

func TestTokenEvents(t *testing.T) {
	// The named rules alone: by default every token event is hashed.
	r := newTest(t, Config{Cookies: []string{"SID"}, JSONFields: []string{"access_token"}, NoDefaults: true})
	tests := []struct {
		name string
		ev   session.TokenEvent
		kept bool
	}{
		// A cookie token follows the cookie rules.
		{"cookie", session.TokenEvent{Kind: session.TokenIssue, Name: "cookie:SID", Value: "v"}, false},
		// A token from a JSON body follows the JSON rules, Prev too.
		{"json", session.TokenEvent{Kind: session.TokenRefresh, Name: "access_token", Value: "v", Prev: "old"}, false},
		// A token no rule covers stays, so its claims stay readable.
		{"uncovered", session.TokenEvent{Kind: session.TokenLogin, Name: "refresh_token", Value: "v"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &session.Exchange{Tokens: []session.TokenEvent{tt.ev}}
			r.Apply(x)
			got := x.Tokens[0]
			if tt.kept {
				if got != tt.ev {
					t.Fatalf("changed: %+v", got)
				}
				return
			}
			if got.Value != r.Hash(tt.ev.Value) || (tt.ev.Prev != "" && got.Prev != r.Hash(tt.ev.Prev)) || x.Flags&session.FlagRedacted == 0 {
				t.Fatalf("got %+v", got)
			}
		})
	}
}
