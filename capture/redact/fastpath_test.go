package redact

import (
	"strings"
	"testing"
)

// headerSpecial are the header names a rule looks at besides r.headers.
var headerSpecial = []string{"authorization", "cookie", "set-cookie", "www-authenticate", "proxy-authenticate", "location"}

// namesHeader is what mayNameHeader stands in for: whether a rule looks
// at a header called name, told by its lower-cased name.
func namesHeader(r *Redactor, name string) bool {
	low := strings.ToLower(name)
	if r.headers[low] {
		return true
	}
	for _, s := range headerSpecial {
		if low == s {
			return true
		}
	}
	return false
}

// TestHeaderShape: mayNameHeader lets through every header a rule names,
// in any case and spelt with the Kelvin sign (which lower-cases to k),
// and passes over the common headers no rule names.
func TestHeaderShape(t *testing.T) {
	for _, cfg := range []Config{{}, {NoDefaults: true, Headers: []string{"X-Custom-Token", "1st-key", "Ünï", strings.Repeat("x", 70)}}} {
		r := newTest(t, cfg)
		var names []string
		for h := range r.headers {
			names = append(names, h)
		}
		names = append(names, headerSpecial...)
		for _, n := range names {
			for _, v := range []string{n, strings.ToUpper(n), strings.ToUpper(n[:1]) + n[1:], strings.ReplaceAll(n, "k", "\u212a")} {
				if namesHeader(r, v) && !r.mayNameHeader(v) {
					t.Errorf("mayNameHeader(%q) = false, but a rule names it", v)
				}
			}
		}
		for _, n := range []string{"Host", "Date", "Content-Type", "Content-Length", "User-Agent", "Accept-Encoding", "Connection", "Cache-Control"} {
			if r.mayNameHeader(n) {
				t.Errorf("mayNameHeader(%q) = true", n)
			}
		}
	}
}

// queryChanges is what queryMayHave stands in for: whether the form rules
// or the authorization-code rule change query.
func queryChanges(r *Redactor, query string) bool {
	_, changed := r.redactForm([]byte(query), func(string) {})
	_, code := r.redactAuthCode([]byte(query), func(string) {})
	return changed || r.oauthCode && code
}

// TestQueryMayHave: queryMayHave is true for every query the form rules
// change, however the name is spelt, and false for common queries.
func TestQueryMayHave(t *testing.T) {
	long := strings.Repeat("n", 40)
	r := newTest(t, Config{FormFields: []string{long}})
	tests := []struct {
		query string
		maybe bool
	}{
		{"page=2&sort=price", false},                 // the common query
		{"", false},                                  // none
		{"access_token=a", true},                     // a default field
		{"ACCESS_TOKEN=a", true},                     // any case
		{"access%5Ftoken=a", true},                   // escaped: left to the decoder
		{"access+token=a&x=1", true},                 // '+' is a space: left to the decoder
		{"code=c&state=s", true},                     // an authorization response
		{"Code_Verifier=v&grant_type=x", true},       // a token exchange's field
		{"acc\u212aess=1", true},                     // non-ASCII: left to strings.ToLower
		{long + "=v", true},                          // a name longer than the stack buffer
		{"x=1&&=2&pwd", true},                        // a field without '='
		{"page=access_token&q=password", false},      // names only, not values
		{"a_very_long_parameter_name_here=1", false}, // longer than every name
	}
	for _, tt := range tests {
		if got := r.queryMayHave(tt.query); got != tt.maybe {
			t.Errorf("queryMayHave(%q) = %v, want %v", tt.query, got, tt.maybe)
		}
		if queryChanges(r, tt.query) && !r.queryMayHave(tt.query) {
			t.Errorf("queryMayHave(%q) = false, but the rules change it", tt.query)
		}
	}
}

// redactCookieSplit is redactCookie as it was first written, by
// splitting the header and joining the parts again: the reference for
// the rewrite that builds the value in one go.
func redactCookieSplit(r *Redactor, v string) (string, bool) {
	var b strings.Builder
	changed := false
	for i, part := range strings.Split(v, ";") {
		if i > 0 {
			b.WriteByte(';')
		}
		nv, ok := cookiePairSplit(r, part)
		changed = changed || ok
		b.WriteString(nv)
	}
	return b.String(), changed
}

func cookiePairSplit(r *Redactor, part string) (string, bool) {
	name, val, ok := strings.Cut(part, "=")
	if !ok {
		return part, false
	}
	if !r.cookies[strings.ToLower(strings.TrimSpace(name))] && !r.allCookies {
		return part, false
	}
	core := strings.TrimRight(val, " \t")
	trail := val[len(core):]
	quoted := len(core) >= 2 && core[0] == '"' && core[len(core)-1] == '"'
	if quoted {
		core = core[1 : len(core)-1]
	}
	if core == "" || IsHash(core) {
		return part, false
	}
	h := r.Hash(core)
	if quoted {
		h = `"` + h + `"`
	}
	return name + "=" + h + trail, true
}

// cookieConfigs are the default rules (every cookie) and named cookies
// alone, one of them with a non-ASCII name.
func cookieConfigs(t testing.TB) []*Redactor {
	return []*Redactor{newTest(t, Config{}), newTest(t, Config{NoDefaults: true, Cookies: []string{"SESSIONID", "sid", "\u212aey"}})}
}

func checkCookie(t *testing.T, r *Redactor, v string) {
	t.Helper()
	want, wantOK := redactCookieSplit(r, v)
	got, ok := r.redactCookie(v, func(string) {})
	if got != want || ok != wantOK {
		t.Fatalf("redactCookie(%q) = %q %v, want %q %v", v, got, ok, want, wantOK)
	}
	first, rest, semi := strings.Cut(v, ";")
	if nv, ok := cookiePairSplit(r, first); ok {
		want = nv
		if semi {
			want += ";" + rest
		}
	} else {
		want = v
	}
	if got, _ := r.redactSetCookie(v, func(string) {}); got != want {
		t.Fatalf("redactSetCookie(%q) = %q, want %q", v, got, want)
	}
}

var cookieCases = []string{
	"SESSIONID=abc1",
	"theme=dark; SESSIONID=s1;sid=\"q\"",
	" sid = spaced \t; x=\"\"; y=; =z; novalue; ;;",
	"SID=\"rdct_AAAAAAAAAAAAAAAA\"; sid=rdct_AAAAAAAAAAAAAAAA",
	"key=1; KEY=2; \u212aey=3",
	"sid=\"unterminated; sid=\"",
	"sid=" + strings.Repeat("v", 300) + "; other=" + strings.Repeat("w", 300),
	"",
	";",
	"SESSIONID=s1; Path=/; HttpOnly; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
}

// TestCookieRewrite: the cookie rewrite gives, byte for byte, what
// splitting and joining gave, for Cookie and Set-Cookie.
func TestCookieRewrite(t *testing.T) {
	for _, r := range cookieConfigs(t) {
		for _, v := range cookieCases {
			checkCookie(t, r, v)
		}
	}
}

// FuzzFastPaths checks the shortcuts against what they stand in for, on
// any header name, query and cookie header: mayNameHeader and
// queryMayHave are never false where a rule applies, and the cookie
// rewrite equals splitting and joining.
func FuzzFastPaths(f *testing.F) {
	f.Add("Authorization", "access_token=a&page=1", "SESSIONID=abc1; theme=dark")
	f.Add("X-API-\u212aEY", "code=c&state=s", " sid = \"q\" ;x")
	f.Add("Host", "page=2&sort=price", "")
	for _, v := range cookieCases {
		f.Add("Cookie", "a%5fb=1&+=2", v)
	}
	rs := cookieConfigs(f)
	rs = append(rs, newTest(f, Config{NoDefaults: true, Headers: []string{"X-Custom-Token", "1st-key"}, FormFields: []string{strings.Repeat("n", 40)}}))
	f.Fuzz(func(t *testing.T, name, query, cookie string) {
		for _, r := range rs {
			if namesHeader(r, name) && !r.mayNameHeader(name) {
				t.Fatalf("mayNameHeader(%q) = false, but a rule names it", name)
			}
			if !r.queryMayHave(query) && queryChanges(r, query) {
				t.Fatalf("queryMayHave(%q) = false, but the rules change it", query)
			}
			checkCookie(t, r, cookie)
		}
	})
}
