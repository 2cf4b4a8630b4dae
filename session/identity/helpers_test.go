package identity

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/reprise-tool/reprise/session"
)

// t0 is the time every hand-made exchange counts from.
const t0 = int64(1_700_000_000) * int64(time.Second)

// xb builds one exchange by hand: xb(at, "GET", "/x").hdr(...).status(200).
type xbuilder struct{ x *session.Exchange }

// xb starts an exchange whose request begins at t0+at on connection 1,
// with a 5 ms request and a 20 ms response.
func xb(at time.Duration, method, target string) *xbuilder {
	start := t0 + int64(at)
	return &xbuilder{x: &session.Exchange{
		Conn: session.Conn{ID: 1,
			Client: netip.MustParseAddrPort("127.0.0.1:40000"),
			Server: netip.MustParseAddrPort("127.0.0.1:8089")},
		Request:  session.Request{Method: method, Target: target, Proto: "HTTP/1.1"},
		Response: session.Response{Proto: "HTTP/1.1", Status: 200},
		Timing: session.Timing{RequestStart: start, RequestEnd: start + int64(time.Millisecond),
			ResponseStart: start + 15*int64(time.Millisecond), ResponseEnd: start + 20*int64(time.Millisecond)},
	}}
}

func (b *xbuilder) hdr(name, value string) *xbuilder {
	b.x.Request.Header = append(b.x.Request.Header, session.Header{Name: name, Value: value})
	return b
}

func (b *xbuilder) bearer(tok string) *xbuilder { return b.hdr("Authorization", "Bearer "+tok) }
func (b *xbuilder) cookie(c string) *xbuilder   { return b.hdr("Cookie", c) }

// body sets the request body and its Content-Type.
func (b *xbuilder) body(contentType, body string) *xbuilder {
	b.hdr("Content-Type", contentType)
	b.x.Request.Body = []byte(body)
	b.x.Request.BodySize = int64(len(body))
	return b
}

// form sets a form-encoded request body.
func (b *xbuilder) form(body string) *xbuilder {
	return b.body("application/x-www-form-urlencoded", body)
}

// json sets a JSON request body.
func (b *xbuilder) json(body string) *xbuilder { return b.body("application/json", body) }

func (b *xbuilder) status(code int) *xbuilder { b.x.Response.Status = code; return b }

func (b *xbuilder) rhdr(name, value string) *xbuilder {
	b.x.Response.Header = append(b.x.Response.Header, session.Header{Name: name, Value: value})
	return b
}

func (b *xbuilder) setCookie(v string) *xbuilder { return b.rhdr("Set-Cookie", v) }

// rbody sets the response body and its Content-Type.
func (b *xbuilder) rbody(contentType, body string) *xbuilder {
	b.rhdr("Content-Type", contentType)
	b.x.Response.Body = []byte(body)
	b.x.Response.BodySize = int64(len(body))
	return b
}

// rjson sets a JSON response body.
func (b *xbuilder) rjson(body string) *xbuilder { return b.rbody("application/json", body) }

// rform sets a form-encoded response body (GitHub's token endpoint style).
func (b *xbuilder) rform(body string) *xbuilder {
	return b.rbody("application/x-www-form-urlencoded", body)
}

func (b *xbuilder) conn(id uint64, client string) *xbuilder {
	b.x.Conn.ID = id
	b.x.Conn.Client = netip.MustParseAddrPort(client)
	return b
}

// latency moves the response end to at+d (for slow responses).
func (b *xbuilder) latency(d time.Duration) *xbuilder {
	b.x.Timing.ResponseStart = b.x.Timing.RequestStart + int64(d) - int64(time.Millisecond)
	b.x.Timing.ResponseEnd = b.x.Timing.RequestStart + int64(d)
	return b
}

func (b *xbuilder) noResponse() *xbuilder {
	b.x.Response = session.Response{}
	b.x.Flags |= session.FlagNoResponse
	b.x.Timing.ResponseStart, b.x.Timing.ResponseEnd = 0, 0
	return b
}

// jwtFor makes a signed JWT (HS256, key "test") with the given claims; exp
// and iat are offsets from t0 in seconds.
func jwtFor(t testing.TB, sub, sid string, iat, exp int64, extra ...any) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iat": t0/int64(time.Second) + iat, "exp": t0/int64(time.Second) + exp}
	if sid != "" {
		c["sid"] = sid
	}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("test"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenJSON is an OAuth2 token response body.
func tokenJSON(access, refresh string, expiresIn int) string {
	return `{"access_token":"` + access + `","token_type":"Bearer","refresh_token":"` + refresh + `","expires_in":` + itoa(expiresIn) + `}`
}

func itoa(n int) string { return strconv.Itoa(n) }

// track runs exchanges through a new tracker and returns them with the
// tracker.
func track(t testing.TB, opts []Option, xs ...*xbuilder) ([]*session.Exchange, *Tracker) {
	t.Helper()
	tr, err := NewTracker(opts...)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*session.Exchange, len(xs))
	for i, b := range xs {
		tr.Observe(b.x)
		out[i] = b.x
	}
	return out, tr
}

// assertPartition checks that exchanges with the same label share a
// session key, different labels have different keys, and "-" means none.
func assertPartition(t *testing.T, xs []*session.Exchange, labels string) {
	t.Helper()
	if len(labels) != len(xs) {
		t.Fatalf("labels %q for %d exchanges", labels, len(xs))
	}
	byLabel := map[byte]string{}
	byKey := map[string]byte{}
	for i, x := range xs {
		l := labels[i]
		if l == '-' {
			if x.Session != "" {
				t.Errorf("exchange %d (%s %s): session %q, want none", i, x.Request.Method, x.Request.Target, x.Session)
			}
			continue
		}
		if x.Session == "" {
			t.Errorf("exchange %d (%s %s): no session, want %c", i, x.Request.Method, x.Request.Target, l)
			continue
		}
		if k, ok := byLabel[l]; ok && k != x.Session {
			t.Errorf("exchange %d (%s %s): session %s, want %s (label %c): a session split", i, x.Request.Method, x.Request.Target, x.Session, k, l)
		}
		if o, ok := byKey[x.Session]; ok && o != l {
			t.Errorf("exchange %d (%s %s): session %s also holds label %c, want %c: two sessions merged", i, x.Request.Method, x.Request.Target, x.Session, o, l)
		}
		byLabel[l] = x.Session
		byKey[x.Session] = l
	}
}

// timelineOf returns the timeline with key k.
func timelineOf(t *testing.T, tr *Tracker, k string) session.Timeline {
	t.Helper()
	for _, tl := range tr.Timelines() {
		if tl.Key == k {
			return tl
		}
	}
	t.Fatalf("no timeline %q", k)
	return session.Timeline{}
}

// kinds lists the token event kinds of x, "name" included.
func kinds(x *session.Exchange) []string {
	var out []string
	for _, e := range x.Tokens {
		out = append(out, string(e.Kind)+" "+e.Name)
	}
	return out
}
