package correlate

import (
	"fmt"
	"mime"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

func jsonResp(body string, hdr ...string) *session.Response {
	r := &session.Response{Status: 200, Body: []byte(body), Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header = append(r.Header, session.Header{Name: hdr[i], Value: hdr[i+1]})
	}
	return r
}

func TestFields(t *testing.T) {
	tests := []struct {
		name string
		resp *session.Response
		want map[string]Field
	}{
		// JSON leaves are found by path, numbers marked as numbers.
		{"json", jsonResp(`{"a":{"b":"x","n":7},"l":[{"id":3}],"t":true}`),
			map[string]Field{"json:.a.b": {Value: "x"}, "json:.a.n": {Value: "7", Number: true}, "json:.l[0].id": {Value: "3", Number: true}}},
		// Set-Cookie values by cookie name; Date and Content-Type are ignored.
		{"cookie", &session.Response{Header: session.Headers{{Name: "set-cookie", Value: "sid=abc123; Path=/; HttpOnly"}, {Name: "Date", Value: "today"}, {Name: "X-Token", Value: "tok"}}},
			map[string]Field{"cookie:sid": {Value: "abc123"}, "header:X-Token": {Value: "tok"}}},
		// Form-encoded token responses (OAuth2 servers of old).
		{"form", &session.Response{Header: session.Headers{{Name: "Content-Type", Value: "application/x-www-form-urlencoded"}}, Body: []byte("access_token=aaa&expires_in=60")},
			map[string]Field{"form:access_token": {Value: "aaa"}, "form:expires_in": {Value: "60"}}},
		// A body that is not JSON yields nothing.
		{"text", &session.Response{Header: session.Headers{{Name: "Content-Type", Value: "text/plain"}}, Body: []byte("hello")}, nil}, // none: nil
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fields(tt.resp); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Fields = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDistinctive(t *testing.T) {
	tests := []struct {
		path, value string
		want        bool
	}{
		{"json:.access_token", "eyJhbGciOiJIUzI1NiJ9", true}, // long token
		{"json:.order.id", "7", true},                        // short, but an id by name
		{"json:.items[2]", "7", false},                       // short, not an id
		{"json:.cart_id", "12", true},                        // snake-case id
		{"json:.cartId", "12", true},                         // camel-case id
		{"json:.quantity", "12345678", false},                // a long number is not an id
		{"json:.name", "a long name with spaces", false},     // prose
		{"cookie:sid", "abcdefgh", true},                     // cookie of 8
		{"cookie:theme", "dark", false},                      // short cookie
		{"json:.ids[3]", "9", true},                          // an element of an id list
	}
	for _, tt := range tests {
		t.Run(tt.path+"="+tt.value, func(t *testing.T) {
			if got := Distinctive(tt.path, tt.value); got != tt.want {
				t.Errorf("Distinctive(%q, %q) = %v", tt.path, tt.value, got)
			}
		})
	}
}

// learned returns a table that has seen a login and an order response.
func learned(t testing.TB) *Table {
	t.Helper()
	tb := NewTable()
	rec := jsonResp(`{"access_token":"RECORDED-ACCESS-TOKEN-1","refresh_token":"rec-refresh-1","order":{"id":7}}`, "Set-Cookie", "sid=recsid01; Path=/")
	live := jsonResp(`{"access_token":"LIVE-ACCESS-TOKEN-XYZ","refresh_token":"live-refresh-1","order":{"id":42}}`, "Set-Cookie", "sid=livesid9; Path=/")
	if n := tb.Learn(rec, live); n != 4 {
		t.Fatalf("Learn = %d mappings, want 4", n)
	}
	return tb
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		name    string
		req     session.Request
		want    session.Request
		subs    int
		orphans []string
	}{
		// The credentials of an Authorization header.
		{"bearer",
			session.Request{Method: "GET", Target: "/me", Header: session.Headers{{Name: "authorization", Value: "Bearer RECORDED-ACCESS-TOKEN-1"}}},
			session.Request{Method: "GET", Target: "/me", Header: session.Headers{{Name: "authorization", Value: "Bearer LIVE-ACCESS-TOKEN-XYZ"}}}, 1, nil},
		// A path segment and a query value; "17" is not "7".
		{"path and query",
			session.Request{Method: "GET", Target: "/orders/7/items/17?order=7&x=17"},
			session.Request{Method: "GET", Target: "/orders/42/items/17?order=42&x=17"}, 2, nil},
		// Cookie values by whole value.
		{"cookie",
			session.Request{Method: "GET", Target: "/", Header: session.Headers{{Name: "Cookie", Value: "theme=dark; sid=recsid01"}}},
			session.Request{Method: "GET", Target: "/", Header: session.Headers{{Name: "Cookie", Value: "theme=dark; sid=livesid9"}}}, 1, nil},
		// A form body; BodySize follows the new length.
		{"form",
			session.Request{Method: "POST", Target: "/refresh", Header: session.Headers{{Name: "Content-Type", Value: "application/x-www-form-urlencoded"}}, Body: []byte("grant_type=refresh_token&refresh_token=rec-refresh-1"), BodySize: 51},
			session.Request{Method: "POST", Target: "/refresh", Header: session.Headers{{Name: "Content-Type", Value: "application/x-www-form-urlencoded"}}, Body: []byte("grant_type=refresh_token&refresh_token=live-refresh-1"), BodySize: 52}, 1, nil},
		// A JSON body keeps its formatting; the number stays a number, keys are never touched.
		{"json",
			session.Request{Method: "POST", Target: "/pay", Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{ "7": 7, "ref": "7", "qty": 17 }`), BodySize: 33},
			session.Request{Method: "POST", Target: "/pay", Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{ "7": 42, "ref": "42", "qty": 17 }`), BodySize: 35}, 2, nil},
		// A long token inside other text (a custom header, a text body).
		{"embedded token",
			session.Request{Method: "POST", Target: "/x", Header: session.Headers{{Name: "X-Note", Value: "t=RECORDED-ACCESS-TOKEN-1;"}}, Body: []byte("token RECORDED-ACCESS-TOKEN-1 end"), BodySize: 33},
			session.Request{Method: "POST", Target: "/x", Header: session.Headers{{Name: "X-Note", Value: "t=LIVE-ACCESS-TOKEN-XYZ;"}}, Body: []byte("token LIVE-ACCESS-TOKEN-XYZ end"), BodySize: 31}, 2, nil},
		// Empty segments and pairs, a trailing slash and an escaped
		// segment keep their place; only the values change.
		{"path and query in place",
			session.Request{Method: "GET", Target: "//orders/7//x%2Fy/7/?&order=7&&q=a+b&order=7&"},
			session.Request{Method: "GET", Target: "//orders/42//x%2Fy/42/?&order=42&&q=a+b&order=42&"}, 4, nil},
		// Pairs without a value to replace stay as they were, quotes and
		// spacing included.
		{"cookie untouched",
			session.Request{Method: "GET", Target: "/", Header: session.Headers{{Name: "Cookie", Value: `theme="dark";  lang=en;flag`}}},
			session.Request{Method: "GET", Target: "/", Header: session.Headers{{Name: "Cookie", Value: `theme="dark";  lang=en;flag`}}}, 0, nil},
		// Escaped strings are decoded before they are looked up.
		{"json escapes",
			session.Request{Method: "POST", Target: "/pay", Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"r\u0065f": "\u0037", "note": "a\"b"}`), BodySize: 37},
			session.Request{Method: "POST", Target: "/pay", Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"r\u0065f": "42", "note": "a\"b"}`), BodySize: 33}, 1, nil},
		// Nothing to do.
		{"untouched",
			session.Request{Method: "GET", Target: "/products?page=2"},
			session.Request{Method: "GET", Target: "/products?page=2"}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := learned(t)
			orig := tt.req
			origBody := slices.Clone(tt.req.Body)
			origHeader := slices.Clone(tt.req.Header)
			got, rw := tb.Rewrite(&tt.req)
			if len(got.Header) == 0 && len(tt.want.Header) == 0 {
				got.Header = tt.want.Header // nil and empty are the same here
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Rewrite =\n%+v\nwant\n%+v", got, tt.want)
			}
			if rw.Substituted != tt.subs || !reflect.DeepEqual(rw.Orphans, tt.orphans) {
				t.Errorf("Rewrite counts %+v, want %d substitutions, orphans %v", rw, tt.subs, tt.orphans)
			}
			if string(orig.Body) != string(origBody) {
				t.Errorf("recorded body changed")
			}
			if !slices.Equal(orig.Header, origHeader) {
				t.Errorf("recorded header fields changed: %v", orig.Header)
			}
		})
	}
}

// A login that failed live leaves its values orphaned; a later request
// carrying them is uncorrelated, until a later login maps them.
func TestOrphans(t *testing.T) {
	tb := NewTable()
	rec := jsonResp(`{"access_token":"RECORDED-ACCESS-TOKEN-1"}`)
	tb.Learn(rec, jsonResp(`{"error":"bad password"}`))
	req := session.Request{Method: "GET", Target: "/me", Header: session.Headers{{Name: "Authorization", Value: "Bearer RECORDED-ACCESS-TOKEN-1"}}}
	if _, rw := tb.Rewrite(&req); len(rw.Orphans) != 1 {
		t.Fatalf("orphans = %v, want the access token", rw.Orphans)
	}
	tb.Learn(rec, jsonResp(`{"access_token":"LIVE-TOKEN-ABCDEFGH"}`))
	got, rw := tb.Rewrite(&req)
	if len(rw.Orphans) != 0 || got.Header[0].Value != "Bearer LIVE-TOKEN-ABCDEFGH" {
		t.Fatalf("after a good login: %v %+v", got.Header, rw)
	}
	// A failed request (no live response) orphans nothing already mapped.
	tb.Learn(rec, nil)
	if _, rw := tb.Rewrite(&req); len(rw.Orphans) != 0 {
		t.Fatalf("mapped value orphaned again: %v", rw.Orphans)
	}
}

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Credential
		err      string
	}{
		// A header line, a comment and a blank line are skipped.
		{"basic", "user,password\n# staging\nalice,s3cret\n\nbob,\"pa,ss\"\n", []Credential{{"alice", "s3cret"}, {"bob", "pa,ss"}}, ""},
		// A line with three fields names its line.
		{"fields", "alice,a\nbob,b,c\n", nil, "line 2"},
		// Nothing usable.
		{"empty", "# nothing\n", nil, "no credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCredentials(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestApplyCredentials(t *testing.T) {
	c := Credential{User: "alice", Password: "s3cret"}
	tests := []struct {
		name, ctype, body, want string
		ok                      bool
	}{
		// A redacted form login.
		{"form", "application/x-www-form-urlencoded", "grant_type=password&username=h%3Aab12&password=h%3Acd34", "grant_type=password&username=alice&password=s3cret", true},
		// A JSON login keeps its layout.
		{"json", "application/json", `{"email": "x", "password": "y", "remember": true}`, `{"email": "alice", "password": "s3cret", "remember": true}`, true},
		// No password field: not a login, untouched.
		{"not a login", "application/json", `{"user": "x"}`, `{"user": "x"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := session.Request{Method: "POST", Header: session.Headers{{Name: "Content-Type", Value: tt.ctype}}, Body: []byte(tt.body)}
			got, ok := ApplyCredentials(&req, c)
			if ok != tt.ok || string(got.Body) != tt.want {
				t.Fatalf("got %q %v, want %q %v", got.Body, ok, tt.want, tt.ok)
			}
			if ok && got.BodySize != int64(len(got.Body)) {
				t.Errorf("BodySize %d for %d bytes", got.BodySize, len(got.Body))
			}
		})
	}
}

// mediaType reads the same media type as mime.ParseMediaType.
func TestMediaType(t *testing.T) {
	for _, v := range []string{
		"", "text/plain", "text/plain; charset=utf-8", "Application/JSON", " application/json ;charset=x",
		"application/x-www-form-urlencoded", "application/vnd.api+json", "text", "text/", "/plain", "text/plain/x",
		"text /plain", "text/plain; a=1; a=2", "text/plain; a=1; b=2", "text/plain;", "text/plain; bad",
		"text/pl@in", "téxt/plain", "a\x00/b", ";", "  ",
	} {
		want, _, _ := mime.ParseMediaType(v)
		if got := mediaType(v); got != want {
			t.Errorf("mediaType(%q) = %q, mime says %q", v, got, want)
		}
	}
}

// FuzzMediaType: mediaType never disagrees with mime.ParseMediaType.
func FuzzMediaType(f *testing.F) {
	for _, v := range []string{"text/plain; charset=utf-8", "Application/JSON", "text/plain; a=1; a=2", "a/b;", "x"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		want, _, _ := mime.ParseMediaType(v)
		if got := mediaType(v); got != want {
			t.Fatalf("mediaType(%q) = %q, mime says %q", v, got, want)
		}
	})
}

// A table of many tokens finds each inside other text, by the index as
// by the scan, and replaces it; evicted tokens are no longer found.
func TestTokensInText(t *testing.T) {
	for _, n := range []int{1, scanTokens + 1, 300} {
		tab := NewTable()
		for i := range n {
			tab.Map(fmt.Sprintf("recorded-token-%08d", i), fmt.Sprintf("live-token-%08d", i))
		}
		last := fmt.Sprintf("recorded-token-%08d", n-1)
		req := &session.Request{Method: "GET", Target: "/",
			Header: session.Headers{{Name: "X-Trace", Value: "a=" + last + ";b=" + last}}}
		out, rw := tab.Rewrite(req)
		want := fmt.Sprintf("a=live-token-%08d;b=live-token-%08d", n-1, n-1)
		if got := out.Header[0].Value; got != want || rw.Substituted != 2 {
			t.Errorf("%d tokens: %q (%d substituted), want %q", n, got, rw.Substituted, want)
		}
	}
	var s tokenSet
	for i := range 20 {
		s.add(fmt.Sprintf("token-number-%04d", i))
	}
	s.remove("token-number-0007")
	if got := s.in("x token-number-0007 token-number-0008"); len(got) != 1 || got[0] != "token-number-0008" {
		t.Errorf("found %v after removing 0007", got)
	}
}

// TestTokenSet: tokens that share their head (the first prefixLen
// bytes) and tokens that do not are added once, removed in any order,
// counted, and found in text in the order of their first occurrence,
// by the scan and by the index alike.
func TestTokenSet(t *testing.T) {
	many := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%04d-token", prefix, i))
		}
		return out
	}
	tests := []struct {
		name   string
		add    []string
		remove []string
		text   string
		want   []string
	}{
		{name: "empty", text: "anything at all"},
		{name: "one", add: []string{"abcdefgh-1234567"}, text: "x abcdefgh-1234567 y", want: []string{"abcdefgh-1234567"}},
		{name: "added twice", add: []string{"abcdefgh-1234567", "abcdefgh-1234567"}, text: "abcdefgh-1234567", want: []string{"abcdefgh-1234567"}},
		{name: "short is not held", add: []string{"short"}, text: "short"},
		{name: "same head", add: []string{"eyJhbGci.one-token", "eyJhbGci.two-token", "eyJhbGci.three-token"},
			text: "eyJhbGci.three-token eyJhbGci.one-token", want: []string{"eyJhbGci.three-token", "eyJhbGci.one-token"}},
		{name: "same head, first removed", add: []string{"eyJhbGci.one-token", "eyJhbGci.two-token", "eyJhbGci.three-token"},
			remove: []string{"eyJhbGci.one-token"}, text: "eyJhbGci.one-token eyJhbGci.two-token", want: []string{"eyJhbGci.two-token"}},
		{name: "same head, middle removed", add: []string{"eyJhbGci.one-token", "eyJhbGci.two-token", "eyJhbGci.three-token"},
			remove: []string{"eyJhbGci.two-token", "eyJhbGci.absent-token", "nothead-absent"}, text: "eyJhbGci.two-token eyJhbGci.three-token",
			want: []string{"eyJhbGci.three-token"}},
		{name: "indexed", add: many("tok-", 40), remove: many("tok-", 20),
			text: "Bearer tok-0031-token, tok-0005-token, tok-0039-token tok-0031-token", want: []string{"tok-0031-token", "tok-0039-token"}},
		{name: "one head, many", add: many("eyJhbGci.", 40), remove: append(many("eyJhbGci.", 10), "eyJhbGci.0025-token", "eyJhbGci.0039-token"),
			text: "eyJhbGci.0005-token eyJhbGci.0030-token eyJhbGci.0025-token eyJhbGci.0010-token", want: []string{"eyJhbGci.0030-token", "eyJhbGci.0010-token"}},
		{name: "one head, added again", add: append(many("eyJhbGci.", 20), many("eyJhbGci.", 20)...), remove: many("eyJhbGci.", 19),
			text: "eyJhbGci.0018-token eyJhbGci.0019-token", want: []string{"eyJhbGci.0019-token"}},
		{name: "indexed, distinct heads", add: append(many("a-", 20), many("b-", 20)...), remove: many("a-", 20),
			text: "b-0007-token;a-0007-token;b-0019-token", want: []string{"b-0007-token", "b-0019-token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s tokenSet
			held := map[string]bool{}
			for _, tok := range tt.add {
				s.add(tok)
				held[tok] = len(tok) >= prefixLen
			}
			for _, tok := range tt.remove {
				s.remove(tok)
				delete(held, tok)
			}
			n := 0
			for _, ok := range held {
				if ok {
					n++
				}
			}
			if s.len() != n {
				t.Errorf("len %d, want %d", s.len(), n)
			}
			got := s.in(tt.text)
			if s.heads == nil { // the scan finds them in no particular order
				slices.Sort(got)
				tt.want = slices.Sorted(slices.Values(tt.want))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("in(%q) = %q, want %q", tt.text, got, tt.want)
			}
			if s.heads != nil {
				sum := 0
				for _, c := range s.heads {
					sum += int(c)
				}
				if sum != s.len() {
					t.Errorf("heads count %d tokens, want %d", sum, s.len())
				}
			}
		})
	}
}

// TestMayHold: a table is asked for a value only if it ever held one of
// that length (lengths from 63 on are one), live, orphan or issuing,
// evicted or not; substitution finds every value it holds either way.
func TestMayHold(t *testing.T) {
	long := strings.Repeat("x", 70)
	tests := []struct {
		name string
		fill func(tab *Table)
		ask  map[string]bool
	}{
		{name: "empty", fill: func(*Table) {}, ask: map[string]bool{"": false, "7": false, "api": false}},
		{name: "live", fill: func(tab *Table) { tab.Map("abc", "xyz") }, ask: map[string]bool{"abc": true, "api": true, "ab": false, "abcd": false}},
		{name: "orphan", fill: func(tab *Table) { tab.LearnFields(map[string]Field{"json:.id": {Value: "rec-0001"}}, nil) },
			ask: map[string]bool{"rec-0001": true, "rec-001": false}},
		{name: "issuing", fill: func(tab *Table) { tab.Issuing([]string{"rec-token-0001", "7"}, 1, "login") },
			ask: map[string]bool{"rec-token-0002": true, "7": false}},
		{name: "evicted", fill: func(tab *Table) {
			for i := range maxRunValues + 1 {
				tab.Map(fmt.Sprintf("v%07d", i), "live")
			}
		}, ask: map[string]bool{"v0000000": true, "v000000": false}},
		{name: "long", fill: func(tab *Table) { tab.Map(long, "live") }, ask: map[string]bool{long + "y": true, long[:62]: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewRunTable()
			tt.fill(tab)
			for v, want := range tt.ask {
				if got := tab.mayHold(v); got != want {
					t.Errorf("mayHold(%q) = %v, want %v", v, got, want)
				}
			}
		})
	}
}
