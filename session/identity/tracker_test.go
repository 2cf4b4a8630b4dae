package identity

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

const ms = time.Millisecond

func TestLineage(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		xs     func(t *testing.T) []*xbuilder
		labels string // one letter per exchange: equal letters share a session, '-' none
		check  func(t *testing.T, xs []*session.Exchange, tr *Tracker)
	}{
		{
			// A password login, calls, two proactive refreshes with rotated
			// refresh tokens, calls with each new token, a logout: one
			// session that the rotations never split.
			name: "rotation chain",
			xs: func(t *testing.T) []*xbuilder {
				a0, a1, a2 := jwtFor(t, "u1", "S1", 0, 60), jwtFor(t, "u1", "S1", 55, 115), jwtFor(t, "u1", "S1", 110, 170)
				return []*xbuilder{
					xb(0, "POST", "/auth/login").form("username=alice&password=x").rjson(tokenJSON(a0, "r0", 60)),
					xb(1*time.Second, "GET", "/api/items").bearer(a0),
					xb(55*time.Second, "POST", "/auth/refresh").form("grant_type=refresh_token&refresh_token=r0").rjson(tokenJSON(a1, "r1", 60)),
					xb(56*time.Second, "GET", "/api/cart").bearer(a1),
					xb(110*time.Second, "POST", "/auth/refresh").form("grant_type=refresh_token&refresh_token=r1").rjson(tokenJSON(a2, "r2", 60)),
					xb(111*time.Second, "GET", "/api/orders").bearer(a2),
					xb(112*time.Second, "POST", "/auth/logout").bearer(a2).status(204),
				}
			},
			labels: "aaaaaaa",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				tl := timelineOf(t, tr, xs[0].Session)
				if tl.Logins != 1 || tl.Refreshes != 2 || tl.Proactive != 2 || tl.Reactive != 0 || tl.Logouts != 1 || tl.Exchanges != 7 {
					t.Errorf("timeline counts %+v", tl)
				}
				if tl.Subject != "u1" || tl.Via != "login" || tl.EndedBy != "logout" {
					t.Errorf("subject %q via %q ended %q", tl.Subject, tl.Via, tl.EndedBy)
				}
				ev := xs[2].Tokens[0]
				if ev.Kind != session.TokenRefresh || ev.Name != "access_token" || ev.Prev == "" || !ev.Proactive {
					t.Errorf("refresh event %+v", ev)
				}
				// The old token expired at 60 s; the refresh began at 55 s.
				if ev.Lead != int64(5*time.Second) {
					t.Errorf("lead %v, want 5s", time.Duration(ev.Lead))
				}
				if rt := xs[2].Tokens[1]; rt.Name != "refresh_token" || rt.Prev != "r0" || rt.Value != "r1" {
					t.Errorf("refresh token event %+v", rt)
				}
			},
		},
		{
			// The token expires, a call gets 401, then the client refreshes:
			// a reactive refresh with a negative lead.
			name: "reactive refresh after a 401",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/oauth/token").form("grant_type=password&username=bob&password=x").rjson(tokenJSON("opaqueA0", "opaqueR0", 60)),
					xb(61*time.Second, "GET", "/api/items").bearer("opaqueA0").status(401).rhdr("WWW-Authenticate", `Bearer error="invalid_token"`),
					xb(62*time.Second, "POST", "/oauth/token").form("grant_type=refresh_token&refresh_token=opaqueR0").rjson(tokenJSON("opaqueA1", "opaqueR1", 60)),
					xb(63*time.Second, "GET", "/api/items").bearer("opaqueA1"),
				}
			},
			labels: "aaaa",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				tl := timelineOf(t, tr, xs[0].Session)
				if tl.Refreshes != 1 || tl.Reactive != 1 || tl.Proactive != 0 || tl.Rejected != 1 {
					t.Errorf("timeline %+v", tl)
				}
				if got := kinds(xs[1]); !slices.Equal(got, []string{"rejected access_token"}) {
					t.Errorf("401 events %v", got)
				}
				ev := xs[2].Tokens[0]
				if ev.Proactive || ev.Lead >= 0 {
					t.Errorf("refresh %+v, want reactive with negative lead", ev)
				}
				if tl.Subject == "" || !strings.HasPrefix(tl.Subject, "user#") {
					t.Errorf("subject %q, want a hash of the login name", tl.Subject)
				}
			},
		},
		{
			// A refresh rejected (reused refresh token, 400 invalid_grant)
			// stays in its session as a rejected event; the user then logs
			// in again, which begins a new session.
			name: "a refresh that fails",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/oauth/token").form("grant_type=password&username=c&password=x").rjson(tokenJSON("A0", "R0", 60)),
					xb(50*time.Second, "POST", "/oauth/token").form("grant_type=refresh_token&refresh_token=R0").status(400).rjson(`{"error":"invalid_grant"}`),
					xb(51*time.Second, "GET", "/api/items").bearer("A0"),
					xb(52*time.Second, "POST", "/oauth/token").form("grant_type=password&username=c&password=x").rjson(tokenJSON("A1", "R1", 60)),
					xb(53*time.Second, "GET", "/api/items").bearer("A1"),
				}
			},
			labels: "aaabb",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				if got := kinds(xs[1]); !slices.Equal(got, []string{"rejected refresh_token"}) {
					t.Errorf("failed refresh events %v", got)
				}
				if tl := timelineOf(t, tr, xs[0].Session); tl.Refreshes != 0 || tl.Logins != 1 {
					t.Errorf("timeline %+v", tl)
				}
			},
		},
		{
			// Two requests race to refresh with the same refresh token; the
			// server accepts one and rejects the reuse. Both tokens issued
			// stay in the one session, and so do calls with either.
			name: "two refreshes racing",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/oauth/token").form("grant_type=password&username=d&password=x").rjson(tokenJSON("A0", "R0", 60)),
					xb(55*time.Second, "POST", "/oauth/token").form("grant_type=refresh_token&refresh_token=R0").rjson(tokenJSON("A1", "R1", 60)),
					xb(55*time.Second+2*ms, "POST", "/oauth/token").form("grant_type=refresh_token&refresh_token=R0").conn(2, "127.0.0.1:40001").rjson(tokenJSON("A2", "R2", 60)),
					xb(56*time.Second, "GET", "/api/a").bearer("A1"),
					xb(56*time.Second, "GET", "/api/b").bearer("A2").conn(2, "127.0.0.1:40001"),
					xb(57*time.Second, "POST", "/oauth/token").form("grant_type=refresh_token&refresh_token=R0").status(401),
				}
			},
			labels: "aaaaaa",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				tl := timelineOf(t, tr, xs[0].Session)
				if tl.Refreshes != 2 || tl.Rejected != 1 {
					t.Errorf("timeline %+v", tl)
				}
			},
		},
		{
			// A request in flight with the old token when a refresh lands
			// gets a 401 for a superseded token; the session's next refresh
			// is still proactive.
			name: "401 on a superseded token",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/oauth/token").form("grant_type=password&username=k&password=x").rjson(tokenJSON("K0", "KR0", 60)),
					xb(50*time.Second, "POST", "/oauth/token").form("grant_type=refresh_token&refresh_token=KR0").rjson(tokenJSON("K1", "KR1", 60)),
					xb(50*time.Second+30*ms, "GET", "/api/slow").bearer("K0").conn(2, "127.0.0.1:40001").status(401),
					xb(100*time.Second, "POST", "/oauth/token").form("grant_type=refresh_token&refresh_token=KR1").rjson(tokenJSON("K2", "KR2", 60)),
				}
			},
			labels: "aaaa",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				if tl := timelineOf(t, tr, xs[0].Session); tl.Proactive != 2 || tl.Reactive != 0 || tl.Rejected != 1 {
					t.Errorf("timeline %+v", tl)
				}
			},
		},
		{
			// A Set-Cookie that repeats the session cookie's value is no
			// token event and no new session.
			name: "a cookie re-issued without change",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").setCookie("JSESSIONID=abc123; Path=/; HttpOnly"),
					xb(1*time.Second, "GET", "/page").cookie("JSESSIONID=abc123").setCookie("JSESSIONID=abc123; Path=/; HttpOnly"),
					xb(2*time.Second, "GET", "/page2").cookie("JSESSIONID=abc123"),
				}
			},
			labels: "aaa",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				if got := kinds(xs[0]); !slices.Equal(got, []string{"issue cookie:JSESSIONID"}) {
					t.Errorf("first Set-Cookie events %v", got)
				}
				if len(xs[1].Tokens) != 0 {
					t.Errorf("unchanged cookie events %v", kinds(xs[1]))
				}
			},
		},
		{
			// A logout ends the session; the same user logging in later is
			// a new session with the same subject.
			name: "logout then a new login by the same user",
			xs: func(t *testing.T) []*xbuilder {
				a0, a1 := jwtFor(t, "u7", "S1", 0, 60), jwtFor(t, "u7", "S2", 100, 160)
				return []*xbuilder{
					xb(0, "POST", "/auth/login").json(`{"username":"u7","password":"p"}`).rjson(tokenJSON(a0, "r0", 60)).setCookie("shop_session=c0; Path=/"),
					xb(1*time.Second, "GET", "/api/items").bearer(a0).cookie("shop_session=c0"),
					xb(2*time.Second, "POST", "/auth/logout").bearer(a0).cookie("shop_session=c0").setCookie("shop_session=; Max-Age=0"),
					xb(100*time.Second, "POST", "/auth/login").json(`{"username":"u7","password":"p"}`).rjson(tokenJSON(a1, "r1", 60)).setCookie("shop_session=c1; Path=/"),
					xb(101*time.Second, "GET", "/api/items").bearer(a1).cookie("shop_session=c1"),
				}
			},
			labels: "aaabb",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				a, b := timelineOf(t, tr, xs[0].Session), timelineOf(t, tr, xs[3].Session)
				if a.Subject != "u7" || b.Subject != "u7" || a.Logouts != 1 || b.Logins != 1 {
					t.Errorf("timelines %+v %+v", a, b)
				}
			},
		},
		{
			// A logout whose server forgets to delete the cookie: the
			// client keeps sending it to the next login, which still begins
			// a new session.
			name: "stale cookie sent to the next login",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/login").form("username=e&password=x").setCookie("sessionid=k1"),
					xb(1*time.Second, "GET", "/home").cookie("sessionid=k1"),
					xb(2*time.Second, "POST", "/logout").cookie("sessionid=k1"),
					xb(30*time.Second, "POST", "/login").cookie("sessionid=k1").form("username=e&password=x").setCookie("sessionid=k2"),
					xb(31*time.Second, "GET", "/home").cookie("sessionid=k2"),
				}
			},
			labels: "aaabb",
		},
		{
			// One token used on several connections (a browser's parallel
			// connections, or a client pool) is one session.
			name: "tokens reused across connections",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/api/a").bearer("tokX").conn(1, "10.0.0.1:1000"),
					xb(1*ms, "GET", "/api/b").bearer("tokX").conn(2, "10.0.0.1:1001"),
					xb(2*ms, "GET", "/api/c").bearer("tokX").conn(3, "10.0.0.2:1002"),
				}
			},
			labels: "aaa",
		},
		{
			// Behind a proxy, one keep-alive connection carries many users'
			// requests interleaved; they must not merge.
			name: "many sessions on one keep-alive connection",
			xs: func(t *testing.T) []*xbuilder {
				var xs []*xbuilder
				users := []string{"tokU1", "tokU2", "tokU3"}
				for i := 0; i < 9; i++ {
					xs = append(xs, xb(time.Duration(i)*100*ms, "GET", "/api/x").bearer(users[i%3]).conn(1, "10.9.9.9:5555"))
				}
				return xs
			},
			labels: "abcabcabc",
		},
		{
			// Opaque (non-JWT) tokens are followed through lineage alone.
			name: "opaque tokens",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/oauth/token").form("grant_type=client_credentials&client_id=svc").rjson(`{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"bearer","expires_in":3600}`),
					xb(1*time.Second, "GET", "/api/x").bearer("2YotnFZFEjr1zCsicMWpAA"),
					xb(2*time.Second, "GET", "/api/x").bearer("otherOpaque"),
				}
			},
			labels: "aab",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				ev := xs[0].Tokens[0]
				if ev.Kind != session.TokenLogin || ev.ExpiresAt != xs[0].Timing.ResponseStart+int64(time.Hour) {
					t.Errorf("login event %+v", ev)
				}
				if tl := timelineOf(t, tr, xs[2].Session); tl.Via != "bearer" {
					t.Errorf("via %q", tl.Via)
				}
			},
		},
		{
			// A form-encoded token response (GitHub's style) and a JSON
			// refresh request body.
			name: "form-encoded OAuth2",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/login/oauth/access_token").form("code=abc&grant_type=authorization_code").rform("access_token=gho_16C7e42F&refresh_token=ghr_1B4a&expires_in=28800&token_type=bearer"),
					xb(1*time.Second, "GET", "/user").bearer("gho_16C7e42F"),
					xb(2*time.Second, "POST", "/login/oauth/access_token").json(`{"grant_type":"refresh_token","refresh_token":"ghr_1B4a"}`).rform("access_token=gho_next&refresh_token=ghr_next&expires_in=28800"),
					xb(3*time.Second, "GET", "/user").bearer("gho_next"),
				}
			},
			labels: "aaaa",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				tl := timelineOf(t, tr, xs[0].Session)
				if tl.Logins != 1 || tl.Refreshes != 1 || tl.Proactive != 1 {
					t.Errorf("timeline %+v", tl)
				}
			},
		},
		{
			// Session cookies of other frameworks, one user each, with a
			// login that rotates the cookie (session fixation protection):
			// the anonymous visit and the logged-in pages are one session.
			name: "other frameworks' cookies",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").cookie("PHPSESSID=p1; lang=en"),
					xb(1*ms, "GET", "/").cookie("ASP.NET_SessionId=n1"),
					xb(2*ms, "GET", "/").cookie("connect.sid=s%3Aexp1.sig"),
					xb(3*ms, "GET", "/").cookie("laravel_session=l1; XSRF-TOKEN=x"),
					xb(4*ms, "GET", "/").cookie("_myapp_session=r1"),
					xb(5*ms, "POST", "/login").cookie("PHPSESSID=p1").form("username=f&password=x").status(302).setCookie("PHPSESSID=p2; path=/"),
					xb(6*ms, "GET", "/account").cookie("PHPSESSID=p2; lang=en"),
					xb(7*ms, "GET", "/").cookie("lang=en; _ga=GA1.1"),
				}
			},
			labels: "abcdeaa-",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				if got := kinds(xs[5]); !slices.Equal(got, []string{"login cookie:PHPSESSID"}) {
					t.Errorf("login events %v", got)
				}
				if ev := xs[5].Tokens[0]; ev.Value != "p2" {
					t.Errorf("login cookie %+v", ev)
				}
			},
		},
		{
			// Redacted recordings: tokens are keyed hashes, JWTs cannot be
			// decoded, and equality alone carries the lineage; the expiry
			// comes from expires_in.
			name: "redacted values",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/auth/login").form("username=rdct_u1&password=rdct_p").rjson(tokenJSON("rdct_a0", "rdct_r0", 60)).setCookie("session=rdct_c0"),
					xb(1*time.Second, "GET", "/api/items").hdr("Authorization", "Bearer rdct_a0").cookie("session=rdct_c0"),
					xb(2*time.Second, "POST", "/auth/login").form("username=rdct_u2&password=rdct_p").rjson(tokenJSON("rdct_b0", "rdct_s0", 60)),
					xb(50*time.Second, "POST", "/auth/refresh").form("grant_type=refresh_token&refresh_token=rdct_r0").rjson(tokenJSON("rdct_a1", "rdct_r1", 60)),
					xb(51*time.Second, "GET", "/api/items").hdr("Authorization", "Bearer rdct_a1").cookie("session=rdct_c0"),
					xb(52*time.Second, "GET", "/api/items").hdr("Authorization", "Bearer rdct_b0"),
				}
			},
			labels: "aabaab",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				if ev := xs[3].Tokens[0]; !ev.Proactive || ev.Lead <= 0 {
					t.Errorf("refresh %+v, want proactive with lead from expires_in", ev)
				}
			},
		},
		{
			// A JWT whose login was before the recording started, then a
			// second JWT with the same sid (its refresh was not captured):
			// the sid claim joins them.
			name: "JWT sid joins tokens without lineage",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/api/a").bearer(jwtFor(t, "u9", "sid-9", -30, 30)),
					xb(40*time.Second, "GET", "/api/b").bearer(jwtFor(t, "u9", "sid-9", 25, 85)),
					xb(41*time.Second, "GET", "/api/c").bearer(jwtFor(t, "u9", "sid-10", 40, 100)),
				}
			},
			labels: "aab",
		},
		{
			// Two users log in at once on one connection: never merged.
			name: "simultaneous logins",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/auth/login").form("username=g&password=x").rjson(tokenJSON("G0", "GR0", 60)),
					xb(1*ms, "POST", "/auth/login").form("username=h&password=x").rjson(tokenJSON("H0", "HR0", 60)),
					xb(2*ms, "GET", "/api/x").bearer("H0"),
					xb(3*ms, "GET", "/api/x").bearer("G0"),
				}
			},
			labels: "abba",
		},
		{
			// An exchange without any identity stays unattributed under
			// auto, a failed login starts nothing, and neither does a
			// /refresh-like action that has nothing to do with tokens.
			name: "no identity",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/health"),
					xb(1*ms, "POST", "/auth/login").form("username=i&password=bad").status(401),
					xb(2*ms, "POST", "/feeds/refresh").status(500),
					xb(3*ms, "POST", "/feeds/refresh").bearer("F1").status(500),
				}
			},
			labels: "---a",
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				if len(xs[3].Tokens) != 0 {
					t.Errorf("events %v on a failed non-token refresh", kinds(xs[3]))
				}
			},
		},
		{
			// A request under way when the logout completed still belongs
			// to the session; a later use of the dead token starts another.
			name: "in-flight request at logout",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/api/a").bearer("T1"),
					xb(1*time.Second, "POST", "/auth/logout").bearer("T1").latency(50 * ms),
					xb(1*time.Second+10*ms, "GET", "/api/slow").bearer("T1"),
					xb(5*time.Second, "GET", "/api/late").bearer("T1").status(401),
				}
			},
			labels: "aaab",
		},
		{
			// --refresh-path on a cookie-only service: a replaced cookie
			// there is a refresh, elsewhere a plain issue.
			name:   "refresh path with cookies",
			opts:   []Option{WithRefreshPaths("/keepalive")},
			labels: "aaaa",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "POST", "/signin").form("username=j&password=x").setCookie("sid=c1; Max-Age=600"),
					xb(500*time.Second, "POST", "/keepalive").cookie("sid=c1").setCookie("sid=c2; Max-Age=600"),
					xb(501*time.Second, "GET", "/x").cookie("sid=c2").setCookie("sid=c3"),
					xb(502*time.Second, "GET", "/y").cookie("sid=c3"),
				}
			},
			check: func(t *testing.T, xs []*session.Exchange, tr *Tracker) {
				tl := timelineOf(t, tr, xs[0].Session)
				if tl.Logins != 1 || tl.Refreshes != 1 || tl.Proactive != 1 {
					t.Errorf("timeline %+v", tl)
				}
				if ev := xs[1].Tokens[0]; ev.Lead != int64(100*time.Second)+int64(15*ms) || ev.Prev != "c1" {
					t.Errorf("refresh %+v, want lead 100.015s from Max-Age", ev)
				}
				if got := kinds(xs[2]); !slices.Equal(got, []string{"issue cookie:sid"}) {
					t.Errorf("rotation events %v", got)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			xs, tr := track(t, tc.opts, tc.xs(t)...)
			assertPartition(t, xs, tc.labels)
			if tc.check != nil {
				tc.check(t, xs, tr)
			}
		})
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		name   string
		rules  string
		xs     func(t *testing.T) []*xbuilder
		labels string
	}{
		{
			// cookie:NAME keys on that cookie only; other cookies are ignored.
			name: "cookie", rules: "cookie:APPID",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").cookie("APPID=1; JSESSIONID=x"),
					xb(1*ms, "GET", "/").cookie("APPID=2; JSESSIONID=x"),
					xb(2*ms, "GET", "/").cookie("JSESSIONID=x"),
					xb(3*ms, "GET", "/").cookie("appid=1"),
				}
			},
			labels: "ab--",
		},
		{
			// header:NAME keys on a request header.
			name: "header", rules: "header:X-Tenant-Session",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").hdr("x-tenant-session", "t1"),
					xb(1*ms, "GET", "/").hdr("X-Tenant-Session", "t2"),
					xb(2*ms, "GET", "/").hdr("X-Tenant-Session", "t1"),
					xb(3*ms, "GET", "/").bearer("zzz"),
				}
			},
			labels: "aba-",
		},
		{
			// bearer keys on the Authorization bearer token, any scheme case.
			name: "bearer", rules: "bearer",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").hdr("Authorization", "bearer abc"),
					xb(1*ms, "GET", "/").hdr("Authorization", "Bearer abc"),
					xb(2*ms, "GET", "/").hdr("Authorization", "Basic dXNlcjpwYXNz"),
					xb(3*ms, "GET", "/").cookie("session=abc2"),
				}
			},
			labels: "aa--",
		},
		{
			// jwt-claim:sub joins every token of one user (until logout).
			name: "jwt-claim", rules: "jwt-claim:sub",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").bearer(jwtFor(t, "alice", "", 0, 60)),
					xb(1*ms, "GET", "/").bearer(jwtFor(t, "alice", "", 1, 61)),
					xb(2*ms, "GET", "/").bearer(jwtFor(t, "bob", "", 1, 61)),
					xb(3*ms, "GET", "/").bearer("not-a-jwt"),
				}
			},
			labels: "aabc",
		},
		{
			// query:NAME keys on a query parameter, unescaped.
			name: "query", rules: "query:sess",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/a?x=1&sess=q%201"),
					xb(1*ms, "GET", "/b?sess=q+1"),
					xb(2*ms, "GET", "/b?sess=q2#frag"),
					xb(3*ms, "GET", "/b?session=q1"),
				}
			},
			labels: "aab-",
		},
		{
			// connection: one session per TCP connection.
			name: "connection", rules: "connection",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").conn(1, "10.0.0.1:1"),
					xb(1*ms, "GET", "/").conn(2, "10.0.0.1:2"),
					xb(2*ms, "GET", "/").conn(1, "10.0.0.1:1"),
				}
			},
			labels: "aba",
		},
		{
			// client: one session per client address, whatever the port.
			name: "client", rules: "client",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").conn(1, "10.0.0.1:1"),
					xb(1*ms, "GET", "/").conn(2, "10.0.0.1:2"),
					xb(2*ms, "GET", "/").conn(3, "[::1]:3"),
				}
			},
			labels: "aab",
		},
		{
			// auto with a connection fallback: identified requests follow
			// their tokens, the rest their connection.
			name: "auto then connection", rules: "auto,connection",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").bearer("t1").conn(1, "10.0.0.1:1"),
					xb(1*ms, "GET", "/static.css").conn(1, "10.0.0.1:1"),
					xb(2*ms, "GET", "/").bearer("t1").conn(2, "10.0.0.1:2"),
					xb(3*ms, "GET", "/static.js").conn(1, "10.0.0.1:1"),
				}
			},
			labels: "abab",
		},
		{
			// auto recognises token headers other APIs use, and follows a
			// new one that a response hands out.
			name: "auto headers", rules: "auto",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").hdr("X-Auth-Token", "h1"),
					xb(1*ms, "GET", "/").hdr("X-Session-Id", "h2"),
					xb(2*ms, "GET", "/").hdr("x-auth-token", "h1").rhdr("X-Auth-Token", "h1b"),
					xb(3*ms, "GET", "/").hdr("X-Auth-Token", "h1b").rhdr("X-Auth-Token", "h1b"),
					xb(4*ms, "GET", "/").hdr("X-Auth-Token", "h1b"),
				}
			},
			labels: "abaaa",
		},
		{
			// Token and JWT schemes are bearer tokens; Basic is not a session.
			name: "authorization schemes", rules: "auto",
			xs: func(t *testing.T) []*xbuilder {
				return []*xbuilder{
					xb(0, "GET", "/").hdr("Authorization", "Token 9944b0"),
					xb(1*ms, "GET", "/").hdr("Authorization", "Basic dTpw"),
					xb(2*ms, "GET", "/").hdr("Authorization", "token 9944b0"),
				}
			},
			labels: "a-a",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			xs, _ := track(t, []Option{WithRuleText(tc.rules)}, tc.xs(t)...)
			assertPartition(t, xs, tc.labels)
		})
	}
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "auto", want: "auto"},                                         // the default
		{in: " Cookie:JSESSIONID ", want: "cookie:JSESSIONID"},             // kind case-folded, name kept
		{in: "header:X-Session", want: "header:X-Session"},                 // a header
		{in: "jwt-claim:sid", want: "jwt-claim:sid"},                       // a claim
		{in: "query:s", want: "query:s"},                                   // a query parameter
		{in: "bearer", want: "bearer"},                                     // no name
		{in: "connection", want: "connection"},                             // fallback
		{in: "client", want: "client"},                                     // fallback
		{in: "cookie", err: "cookie needs a name"},                         // name missing
		{in: "cookie:", err: "cookie needs a name"},                        // name empty
		{in: "bearer:x", err: "bearer takes no name"},                      // name where none goes
		{in: "ip", err: `unknown kind "ip"`},                               // unknown kind
		{in: "", err: "empty rule"},                                        // nothing
		{in: "cookie:a;b", err: "separator"},                               // a name that cannot be a cookie name
		{in: "header:X Y", err: "separator"},                               // a space
		{in: "query:a=b", err: "separator"},                                // an equals sign
		{in: "jwt-claim:sub:x", err: "separator"},                          // a second colon
		{in: "connection:1", err: "connection takes no name"},              // fallback with a name
		{in: "header:Authorization", want: "header:Authorization"},         // a raw header is allowed
		{in: "cookie:__Host-session", want: "cookie:__Host-session"},       // prefixed cookie name
		{in: "jwt-claim:https://x/claims/sid", err: "separator"},           // URL claims are not supported
		{in: "COOKIE:ASP.NET_SessionId", want: "cookie:ASP.NET_SessionId"}, // dots in names
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseRule(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseRule(%q) = %v, %v; want error containing %q", tc.in, r, err, tc.err)
				}
				return
			}
			if err != nil || r.String() != tc.want {
				t.Fatalf("ParseRule(%q) = %v, %v; want %s", tc.in, r, err, tc.want)
			}
		})
	}
	rules, err := ParseRules("auto,connection", "cookie:X")
	if err != nil || len(rules) != 3 || rules[1].Kind != RuleConnection {
		t.Fatalf("ParseRules = %v, %v", rules, err)
	}
	if rules, _ := ParseRules(); len(rules) != 1 || rules[0].Kind != RuleAuto {
		t.Fatalf("ParseRules() = %v, want auto", rules)
	}
}
