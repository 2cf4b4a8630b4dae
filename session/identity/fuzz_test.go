package identity

import (
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// The fuzzers feed wire bytes to every parser the tracker runs on traffic.
// None may panic, allocate without bound, or produce a session key that
// is not the tracker's own. Seed corpora live in testdata/fuzz/.

func FuzzExtractCookie(f *testing.F) {
	for _, s := range []string{"JSESSIONID=abc; lang=en", `a="q"; ;=; b`, "", ";;;", "x=\"", "PHPSESSID=p1;connect.sid=s%3A1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		n := 0
		forEachCookie(header, func(name, value string) bool {
			n++
			if name == "" || strings.ContainsRune(name, ';') || strings.ContainsRune(value, ';') {
				t.Fatalf("cookie %q=%q from %q", name, value, header)
			}
			isSessionCookie(name)
			return true
		})
		if n > strings.Count(header, "=") {
			t.Fatalf("%d cookies from %q", n, header)
		}
	})
}

func FuzzExtractSetCookie(f *testing.F) {
	for _, s := range []string{"sid=1; Max-Age=600; Path=/", "sid=; Max-Age=0", "a=b; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "=x", "s=\"\xff\"; max-age=-1", "x"} {
		f.Add(s, int64(1e18))
	}
	f.Fuzz(func(t *testing.T, line string, now int64) {
		sc, ok := parseSetCookie(line, now)
		if ok && sc.Name == "" {
			t.Fatalf("empty name from %q", line)
		}
		_ = setCookieName(line)
	})
}

func FuzzExtractJWT(f *testing.F) {
	f.Add(jwtFor(f, "u", "s", 0, 60))
	for _, s := range []string{"eyJ.eyJ.x", "eyJhbGciOiJub25lIn0.eyJzdWIiOjF9.", "eyJhbGciOiJIUzI1NiJ9.e30.sig", "rdct_abc", "a.b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, ok := decodeJWT(tok)
		if !ok {
			return
		}
		_ = c.claim("sid") + c.claim("sub") + c.claim("nested")
		_ = expiry(c, ok, 60, 1)
		_ = bearerToken("Bearer " + tok)
	})
}

func FuzzExtractTokenBody(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","refresh_token":"r","expires_in":60}`), "application/json", "")
	f.Add([]byte("access_token=a&refresh_token=r&expires_in=3600"), "application/x-www-form-urlencoded", "")
	f.Add([]byte(`{"data":{"token":"t","expiresIn":"1e3"}}`), "application/json", "")
	f.Add([]byte("grant_type=refresh_token&refresh_token=%zz"), "", "")
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, "application/json", "gzip")
	f.Fuzz(func(t *testing.T, body []byte, ctype, enc string) {
		fl := parseTokenBody(body, ctype, enc)
		if fl.ExpiresIn < -1 {
			t.Fatalf("expires_in %d", fl.ExpiresIn)
		}
		_ = queryParam(string(body), "sess")
		_ = lastSegment(targetPath(string(body)))
	})
}

// FuzzExtractObserve runs whole exchanges built from fuzzed parts through
// a tracker with every rule on.
func FuzzExtractObserve(f *testing.F) {
	f.Add("POST", "/auth/login", "", "", []byte("username=a&password=b"), "shop_session=c1; Max-Age=60", []byte(`{"access_token":"A","refresh_token":"R","expires_in":60}`), 200)
	f.Add("POST", "/oauth/token", "Bearer A", "sid=x", []byte("grant_type=refresh_token&refresh_token=R"), "", []byte(`{"access_token":"B"}`), 200)
	f.Add("GET", "/api?sess=1", "Bearer eyJ.e30.x", "JSESSIONID=j", []byte(nil), "JSESSIONID=; Max-Age=0", []byte(nil), 401)
	f.Add("DELETE", "/session", "bearer A", "", []byte(nil), "", []byte(nil), 204)
	f.Fuzz(func(t *testing.T, method, target, auth, cookie string, reqBody []byte, setCookie string, respBody []byte, status int) {
		tr, err := NewTracker(WithRuleText("auto,bearer,jwt-claim:sub,cookie:sid,header:X-S,query:sess,connection,client"),
			WithIdleTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			at := int64(i+1) * int64(time.Second)
			x := &session.Exchange{
				Conn:    session.Conn{ID: uint64(i % 2)},
				Request: session.Request{Method: method, Target: target, Body: reqBody},
				Response: session.Response{Status: status, Body: respBody,
					Header: session.Headers{{Name: "Set-Cookie", Value: setCookie}, {Name: "X-S", Value: cookie}}},
				Timing: session.Timing{RequestStart: at, ResponseEnd: at + 1},
			}
			x.Request.Header = session.Headers{{Name: "Authorization", Value: auth}, {Name: "Cookie", Value: cookie},
				{Name: "Content-Type", Value: "application/x-www-form-urlencoded"}, {Name: "X-S", Value: auth}}
			tr.Observe(x)
			if x.Session != "" && !strings.HasPrefix(x.Session, "s-") {
				t.Fatalf("session key %q", x.Session)
			}
		}
		tls := tr.Close()
		n := 0
		for _, tl := range tls {
			n += tl.Exchanges
		}
		if st := tr.Stats(); uint64(n) != st.Attributed {
			t.Fatalf("timelines hold %d exchanges, %d attributed", n, st.Attributed)
		}
	})
}
