package identity

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

func TestForEachCookie(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"plain pairs", "a=1; b=2", []string{"a=1", "b=2"}},                                 // the usual form
		{"no spaces", "a=1;b=2", []string{"a=1", "b=2"}},                                    // some clients omit them
		{"quoted value", `a="x y"`, []string{"a=x y"}},                                      // RFC 6265 allows quotes
		{"empty pieces", ";; a=1 ; ;", []string{"a=1"}},                                     // stray separators
		{"no equals", "flag; a=1", []string{"a=1"}},                                         // a bare word is skipped
		{"empty name", "=v; a=1", []string{"a=1"}},                                          // nameless pair skipped
		{"value with equals", "connect.sid=s%3Aab.c=d", []string{"connect.sid=s%3Aab.c=d"}}, // Express signs with '='
		{"redacted", "session=rdct_AbC-_9", []string{"session=rdct_AbC-_9"}},                // keyed hashes pass through
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			forEachCookie(tc.in, func(n, v string) bool { got = append(got, n+"="+v); return true })
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIsSessionCookie(t *testing.T) {
	for name, want := range map[string]bool{
		"JSESSIONID": true, "PHPSESSID": true, "ASP.NET_SessionId": true, "connect.sid": true, // Java, PHP, .NET, Express
		"sessionid": true, "_session_id": true, "laravel_session": true, "session": true, "sid": true, // Django, Rails, Laravel, Flask
		"_myapp_session": true, "shop_session": true, "__Host-session": true, "__Secure-sid": true, // suffixes, prefixes
		"ASPSESSIONIDQQGGQGPA": true, "SESS0123456789abcdef0123456789abcdef": true, // classic ASP, Drupal
		"wordpress_logged_in_abc": true, ".AspNetCore.Cookies": true,
		"lang": false, "_ga": false, "AWSALB": false, "csrftoken": false, "XSRF-TOKEN": false, // shared or not a session
		"csrf_token": false, "__stripe_sid": false, "remember_web_59ba36": false,
	} {
		if got := isSessionCookie(name); got != want {
			t.Errorf("isSessionCookie(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseSetCookie(t *testing.T) {
	now := t0
	tests := []struct {
		name, in string
		want     setCookie
	}{
		{"session cookie", "sid=abc; Path=/; HttpOnly", setCookie{Name: "sid", Value: "abc"}},
		{"max-age", "sid=abc; Max-Age=600", setCookie{Name: "sid", Value: "abc", ExpiresAt: now + 600e9}},
		{"max-age zero deletes", "sid=abc; Max-Age=0", setCookie{Name: "sid", Value: "abc", Deleted: true}},
		{"empty value deletes", "sid=; Path=/", setCookie{Name: "sid", Deleted: true}},
		{"expires in the past deletes", "sid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT", setCookie{Name: "sid", Value: "x", Deleted: true, ExpiresAt: 0}},
		{"expires in the future", "sid=x; Expires=Wed, 15 Nov 2023 00:00:00 GMT", setCookie{Name: "sid", Value: "x", ExpiresAt: time.Date(2023, 11, 15, 0, 0, 0, 0, time.UTC).UnixNano()}},
		{"odd value kept", `sid=a"b; Path=/`, setCookie{Name: "sid", Value: `a"b`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseSetCookie(tc.in, now)
			if !ok || got != tc.want {
				t.Errorf("parseSetCookie(%q) = %+v, %v; want %+v", tc.in, got, ok, tc.want)
			}
		})
	}
	if _, ok := parseSetCookie("garbage", now); ok {
		t.Error("a Set-Cookie without '=' parsed")
	}
}

func TestParseTokenBody(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	tests := []struct {
		name        string
		body        []byte
		ctype, enc  string
		access, rt  string
		expiresIn   int64
		grant, user string
	}{
		{name: "OAuth2 JSON", body: []byte(`{"access_token":"a","refresh_token":"r","expires_in":3600}`), ctype: "application/json", access: "a", rt: "r", expiresIn: 3600},
		{name: "form response", body: []byte("access_token=a&refresh_token=r&expires_in=60"), ctype: "application/x-www-form-urlencoded", access: "a", rt: "r", expiresIn: 60},
		{name: "expires_in as string", body: []byte(`{"access_token":"a","expires_in":"300"}`), access: "a", expiresIn: 300},
		{name: "camel case", body: []byte(`{"accessToken":"a","refreshToken":"r","expiresIn":5}`), access: "a", rt: "r", expiresIn: 5},
		{name: "nested one level", body: []byte(`{"data":{"access_token":"a"}}`), access: "a", expiresIn: -1},
		{name: "gzip", body: gz(`{"access_token":"a"}`), ctype: "application/json", enc: "gzip", access: "a", expiresIn: -1},
		{name: "refresh request form", body: []byte("grant_type=refresh_token&refresh_token=r%2B1"), rt: "r+1", grant: "refresh_token", expiresIn: -1},
		{name: "login request JSON", body: []byte(`{"username":"ann","password":"p"}`), ctype: "application/json", user: "ann", expiresIn: -1},
		{name: "not a token body", body: []byte("<html>"), ctype: "text/html", expiresIn: -1},
		{name: "broken JSON", body: []byte(`{"access_token":`), ctype: "application/json", expiresIn: -1},
		{name: "negative expires_in ignored", body: []byte(`{"access_token":"a","expires_in":-5}`), access: "a", expiresIn: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := parseTokenBody(tc.body, tc.ctype, tc.enc)
			if f.AccessToken != tc.access || f.RefreshToken != tc.rt || f.ExpiresIn != tc.expiresIn || f.GrantType != tc.grant || f.Username != tc.user {
				t.Errorf("got %+v", f)
			}
		})
	}
}

func TestSmallParsers(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc": "abc", "bearer  abc ": "abc", "BEARER x.y.z": "x.y.z", "Basic dTpw": "", "Bearer": "", "": "",
		"Token 9944b09199c62bcf": "9944b09199c62bcf", "JWT eyJ.a.b": "eyJ.a.b", "Digest username=x": "",
	} {
		if got := bearerToken(in); got != want {
			t.Errorf("bearerToken(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/a/b?x=1": "/a/b", "http://h:1/p?q": "/p", "https://h": "/", "/x#f": "/x", "*": "*",
	} {
		if got := targetPath(in); got != want {
			t.Errorf("targetPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := lastSegment("/Auth/Login/"); got != "login" {
		t.Errorf("lastSegment = %q", got)
	}
	if got := queryParam("/p?a=1&s=x%20y&s=2", "s"); got != "x y" {
		t.Errorf("queryParam = %q", got)
	}
	if c, ok := decodeJWT(jwtFor(t, "u", "S", 0, 60, "n", 12.5)); !ok || c.Sub != "u" || c.Sid != "S" || c.claim("n") != "12.5" || c.Exp == 0 {
		t.Errorf("decodeJWT = %+v, %v", c, ok)
	}
	if _, ok := decodeJWT("rdct_abc"); ok {
		t.Error("a redacted token decoded as a JWT")
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"bad rule", WithRuleText("cookie")},                  // a cookie rule needs a name
		{"relative login path", WithLoginPaths("auth/login")}, // patterns start with '/'
		{"bad pattern", WithRefreshPaths("/a/[")},             // unclosed class
		{"empty logout path", WithLogoutPaths("")},            // nothing to match
		{"zero idle", WithIdleTimeout(0)},                     // would close every session at once
		{"negative window", WithReorderWindow(-time.Second)},  // meaningless
		{"no pending", WithMaxPending(0)},                     // could not reorder at all
		{"invalid rule value", WithRules(Rule{Kind: "nope"})}, // checked like parsed rules
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewTracker(tc.opt); err == nil {
				t.Error("NewTracker accepted it")
			}
		})
	}
	tr, err := NewTracker(WithRules(Rule{Kind: RuleCookie, Name: "X"}, Rule{Kind: RuleConnection}), WithLoginPaths("/api/*/signin"))
	if err != nil || !slices.Equal(tr.Rules(), []string{"cookie:X", "connection"}) {
		t.Errorf("rules %v, %v", tr.Rules(), err)
	}
}

// TestLoginPath checks that --login-path turns a service's own endpoint
// into a login, here one that returns its token in a custom header.
func TestLoginPath(t *testing.T) {
	xs, tr := track(t, []Option{WithRuleText("header:X-Api-Key"), WithLoginPaths("/api/*/signin"), WithLogoutPaths("/api/*/bye")},
		xb(0, "POST", "/api/v2/signin").json(`{"email":"z@x"}`).rhdr("X-Api-Key", "k1"),
		xb(time.Second, "GET", "/api/v2/me").hdr("X-Api-Key", "k1"),
		xb(2*time.Second, "POST", "/api/v2/bye").hdr("X-Api-Key", "k1"),
		xb(3*time.Second, "POST", "/api/v2/signin").json(`{"email":"z@x"}`).rhdr("X-Api-Key", "k2"),
	)
	assertPartition(t, xs, "aaab")
	if tl := timelineOf(t, tr, xs[0].Session); tl.Logins != 1 || tl.Logouts != 1 || tl.Subject == "" {
		t.Errorf("timeline %+v", tl)
	}
}

// errSource yields its exchanges, then an error, then more exchanges, as
// a recording reader does around a damaged block.
type errSource struct {
	xs  []*session.Exchange
	err error
	at  int // the error comes before xs[at]
	i   int
	hit bool
}

func (s *errSource) Next() (*session.Exchange, error) {
	if s.i == s.at && !s.hit {
		s.hit = true
		return nil, s.err
	}
	if s.i >= len(s.xs) {
		return nil, io.EOF
	}
	s.i++
	return s.xs[s.i-1], nil
}

func TestAnnotate(t *testing.T) {
	// The call using the token was emitted before the slow login that
	// issued it (capture emits by completion): reordering puts the login
	// first and both land in one session.
	login := xb(0, "POST", "/auth/login").form("username=a&password=b").rjson(tokenJSON("A", "R", 60)).latency(900 * ms).x
	call := xb(950*ms, "GET", "/api/x").bearer("A").x
	other := xb(100*ms, "GET", "/api/y").bearer("B").x
	damage := errors.New("damaged block at offset 4096")
	tr, err := NewTracker()
	if err != nil {
		t.Fatal(err)
	}
	src := tr.Annotate(&errSource{xs: []*session.Exchange{call, login, other}, err: damage, at: 2})
	var order []string
	var errs []error
	for {
		x, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		order = append(order, x.Request.Target)
	}
	// The error comes once, after the exchanges read before it; reading
	// then goes on.
	if len(errs) != 1 || !errors.Is(errs[0], damage) {
		t.Errorf("errors %v", errs)
	}
	if !slices.Equal(order, []string{"/auth/login", "/api/x", "/api/y"}) {
		t.Errorf("order %v", order)
	}
	if login.Session == "" || login.Session != call.Session || other.Session == login.Session {
		t.Errorf("sessions %q %q %q", login.Session, call.Session, other.Session)
	}
	if st := tr.Stats(); st.LateTokens != 0 || st.Sessions != 2 {
		t.Errorf("stats %+v", st)
	}

	// Without reordering the same input is late: the call begins a
	// session and the login joins it, counted.
	tr, _ = NewTracker(WithReorderWindow(0))
	login.Session, call.Session, login.Tokens = "", "", nil
	src = tr.Annotate(&errSource{xs: []*session.Exchange{call, login}, at: -1})
	for {
		if _, err := src.Next(); err != nil {
			break
		}
	}
	if login.Session != call.Session || tr.Stats().LateTokens != 1 {
		t.Errorf("late: sessions %q %q, stats %+v", login.Session, call.Session, tr.Stats())
	}
}

func TestIdle(t *testing.T) {
	tr, err := NewTracker(WithIdleTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	a := xb(0, "GET", "/x").bearer("T").x
	b := xb(10*time.Minute, "GET", "/x").bearer("U").x
	c := xb(11*time.Minute, "GET", "/x").bearer("T").x
	for _, x := range []*session.Exchange{a, b, c} {
		tr.Observe(x)
	}
	// The first session went idle and was closed: its state is gone, its
	// timeline kept, and its token starts a new session.
	if a.Session == c.Session {
		t.Errorf("token reused after idle close joined the old session %s", a.Session)
	}
	done := tr.TakeFinished()
	if len(done) != 1 || done[0].Key != a.Session || done[0].EndedBy != "idle" {
		t.Fatalf("finished %+v", done)
	}
	if tr.Active() != 2 || len(tr.TakeFinished()) != 0 {
		t.Errorf("active %d", tr.Active())
	}
	if all := tr.Close(); len(all) != 2 || all[0].EndedBy != "" {
		t.Errorf("close %+v", all)
	}
}

// TestHeaderToken checks that a token header a response hands out is an
// issue event, and one echoed back unchanged is none.
func TestHeaderToken(t *testing.T) {
	xs, _ := track(t, nil,
		xb(0, "GET", "/").hdr("X-Auth-Token", "h1").rhdr("X-Auth-Token", "h1"),
		xb(1*ms, "GET", "/").hdr("X-Auth-Token", "h1").rhdr("X-Auth-Token", "h2"),
		xb(2*ms, "GET", "/").hdr("X-Auth-Token", "h2"),
	)
	assertPartition(t, xs, "aaa")
	if len(xs[0].Tokens) != 0 || !slices.Equal(kinds(xs[1]), []string{"issue header:X-Auth-Token"}) {
		t.Errorf("events %v %v", kinds(xs[0]), kinds(xs[1]))
	}
}

// TestEventCap checks that a cookie rotated on every response keeps its
// lineage (one session) while the timeline keeps a bounded number of
// issue events; every exchange still carries its own.
func TestEventCap(t *testing.T) {
	var bs []*xbuilder
	for i := 0; i < 600; i++ {
		b := xb(time.Duration(i)*ms, "GET", "/page").setCookie(fmt.Sprintf("_app_session=v%d", i+1))
		if i > 0 {
			b.cookie(fmt.Sprintf("_app_session=v%d", i))
		}
		bs = append(bs, b)
	}
	xs, tr := track(t, nil, bs...)
	for i, x := range xs {
		if x.Session != xs[0].Session || len(x.Tokens) != 1 {
			t.Fatalf("exchange %d: session %s, %d events", i, x.Session, len(x.Tokens))
		}
	}
	if tl := timelineOf(t, tr, xs[0].Session); len(tl.Events) != maxMinorEvents || tl.Exchanges != 600 {
		t.Errorf("%d events on the timeline, %d exchanges", len(tl.Events), tl.Exchanges)
	}
}

// TestAnnotateOrder feeds exchanges shuffled within the reorder window and
// expects them back in request start order, ties in arrival order.
func TestAnnotateOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var xs []*session.Exchange
	for i := 0; i < 5000; i++ {
		// Starts jitter by up to 500 ms around a steady 1 ms pace; every
		// tenth shares its start with the previous one.
		at := time.Duration(i)*ms + time.Duration(r.IntN(500))*ms
		if i%10 == 0 && i > 0 {
			at = time.Duration(xs[i-1].Timing.RequestStart - t0)
		}
		x := xb(at, "GET", fmt.Sprintf("/x/%d", i)).x
		x.Index = i
		xs = append(xs, x)
	}
	tr, _ := NewTracker(WithRuleText("connection"))
	src := tr.Annotate(&errSource{xs: xs, at: -1})
	var prev *session.Exchange
	n := 0
	for {
		x, err := src.Next()
		if err != nil {
			break
		}
		n++
		if prev != nil && (x.Timing.RequestStart < prev.Timing.RequestStart ||
			x.Timing.RequestStart == prev.Timing.RequestStart && x.Index < prev.Index) {
			t.Fatalf("%s after %s", x.Request.Target, prev.Request.Target)
		}
		prev = x
	}
	if n != len(xs) {
		t.Fatalf("%d of %d exchanges came out", n, len(xs))
	}
}
