package identity

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// synthStream makes a large, realistic stream: users log in (form body,
// JSON token response with a JWT), browse a JSON API with their bearer
// token, a session cookie and browser-like headers, refresh every 20
// calls, sometimes after a 401, and log out; active users interleave, as
// on a busy service. API bodies share one backing array, so the stream is
// large in HTTP bytes but cheap in memory.
func synthStream(tb testing.TB, users, callsPerUser, active int) ([]*session.Exchange, int64) {
	tb.Helper()
	apiBody := []byte(`{"items":[` + strings.Repeat(`{"id":12345,"name":"A product with a name","price":1999,"tags":["a","b"]},`, 14) + `{"id":0}],"page":1}`)
	common := session.Headers{
		{Name: "Host", Value: "shop.example.com"},
		{Name: "User-Agent", Value: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},
		{Name: "Accept", Value: "application/json"},
		{Name: "Accept-Encoding", Value: "gzip, deflate, br"},
		{Name: "Accept-Language", Value: "en-GB,en;q=0.9"},
		{Name: "X-Request-Id", Value: "7f1c2b9e-5d4a-4b8e-9c3f-1a2b3c4d5e6f"},
	}
	respH := session.Headers{
		{Name: "Content-Type", Value: "application/json"},
		{Name: "Cache-Control", Value: "no-store"},
		{Name: "Date", Value: "Thu, 26 Nov 2026 01:00:00 GMT"},
		{Name: "Content-Length", Value: fmt.Sprint(len(apiBody))},
	}
	type user struct {
		access, refresh, cookie string
		calls, gen, id          int
		exp                     int64
	}
	var out []*session.Exchange
	at := t0
	next := 0
	live := make([]*user, 0, active)
	var seq int
	mk := func(method, target string, h session.Headers, body []byte, status int, rh session.Headers, rbody []byte) {
		at += int64(200 * time.Microsecond)
		seq++
		out = append(out, &session.Exchange{
			Conn:     session.Conn{ID: uint64(seq % 512)},
			Request:  session.Request{Method: method, Target: target, Proto: "HTTP/1.1", Header: h, Body: body, BodySize: int64(len(body))},
			Response: session.Response{Proto: "HTTP/1.1", Status: status, Header: rh, Body: rbody, BodySize: int64(len(rbody))},
			Timing:   session.Timing{RequestStart: at, RequestEnd: at + 1000, ResponseStart: at + 50000, ResponseEnd: at + 60000},
		})
	}
	issue := func(u *user) []byte {
		u.gen++
		u.access = jwtFor(tb, fmt.Sprintf("user-%d", u.id), fmt.Sprintf("sid-%d", u.id), (at-t0)/1e9, (at-t0)/1e9+60, "jti", fmt.Sprint(seq))
		u.refresh = fmt.Sprintf("rt_%d_%d_abcdefghijklmnop", seq, u.gen)
		u.exp = at + 60e9
		return []byte(tokenJSON(u.access, u.refresh, 60))
	}
	form := append(session.Headers{{Name: "Content-Type", Value: "application/x-www-form-urlencoded"}}, common...)
	for len(out) < users*(callsPerUser+4) {
		for len(live) < active && next < users {
			u := &user{id: next, cookie: fmt.Sprintf("c_%d_0123456789abcdef", next)}
			body := issue(u)
			mk("POST", "/auth/login", form, []byte("username=user-"+fmt.Sprint(next)+"&password=secret"), 200,
				append(session.Headers{{Name: "Set-Cookie", Value: "shop_session=" + u.cookie + "; Path=/; HttpOnly"}}, respH[:3]...), body)
			live = append(live, u)
			next++
		}
		if len(live) == 0 {
			break
		}
		for i := 0; i < len(live); i++ {
			u := live[i]
			h := append(session.Headers{{Name: "Authorization", Value: "Bearer " + u.access}, {Name: "Cookie", Value: "shop_session=" + u.cookie + "; lang=en"}}, common...)
			switch {
			case u.calls >= callsPerUser:
				mk("POST", "/auth/logout", h, nil, 204, session.Headers{{Name: "Set-Cookie", Value: "shop_session=; Max-Age=0"}}, nil)
				live = append(live[:i], live[i+1:]...)
				i--
				continue
			case u.calls%20 == 19:
				if u.calls%40 == 39 {
					mk("GET", "/api/cart", h, nil, 401, session.Headers{{Name: "WWW-Authenticate", Value: `Bearer error="invalid_token"`}}, nil)
				}
				old := u.refresh
				body := issue(u)
				mk("POST", "/auth/refresh", form, []byte("grant_type=refresh_token&refresh_token="+old), 200, respH[:3], body)
			default:
				mk("GET", fmt.Sprintf("/api/products?page=%d", u.calls%7), h, nil, 200, respH, apiBody)
			}
			u.calls++
		}
	}
	var bytes int64
	for _, x := range out {
		bytes += httpBytes(x)
	}
	return out, bytes
}

// httpBytes approximates an exchange's size on the wire.
func httpBytes(x *session.Exchange) int64 {
	n := int64(len(x.Request.Method) + len(x.Request.Target) + len(x.Request.Proto) + 4 + len(x.Request.Body))
	for _, h := range x.Request.Header {
		n += int64(len(h.Name) + len(h.Value) + 4)
	}
	n += int64(len(x.Response.Proto) + 8 + len(x.Response.Body))
	for _, h := range x.Response.Header {
		n += int64(len(h.Name) + len(h.Value) + 4)
	}
	return n + 4
}

// BenchmarkTrack measures session tracking alone over a large synthetic
// stream: 5000 users, 2000 active at once, 100 calls each with refreshes,
// 401s and logouts. It reports exchanges per second; the MB/s figure is of
// HTTP bytes tracked.
//
//	go test -run XXX -bench BenchmarkTrack -benchmem -cpu 1 ./session/identity
func BenchmarkTrack(b *testing.B) {
	xs, total := synthStream(b, 1000, 100, 500)
	b.SetBytes(total / int64(len(xs)))
	b.ReportAllocs()
	b.ResetTimer()
	var tr *Tracker
	var cpu time.Duration
	start := testkit.CPUTime()
	i := len(xs)
	for n := 0; n < b.N; n++ {
		if i == len(xs) {
			b.StopTimer()
			cpu += testkit.CPUTime() - start
			for _, x := range xs {
				x.Session, x.Tokens = "", x.Tokens[:0]
			}
			tr, _ = NewTracker()
			i = 0
			start = testkit.CPUTime()
			b.StartTimer()
		}
		tr.Observe(xs[i])
		i++
	}
	cpu += testkit.CPUTime() - start
	reportRates(b, cpu, total/int64(len(xs)))
}

// reportRates adds exchanges per second of wall time, and, where the CPU
// time is known, CPU ns per exchange and MB/s per CPU-second: on a shared
// machine the wall-clock figures depend on the neighbours, these do not
// (they include the garbage collector's work on other threads).
func reportRates(b *testing.B, cpu time.Duration, bytesPerOp int64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
	if cpu > 0 {
		perOp := float64(cpu.Nanoseconds()) / float64(b.N)
		b.ReportMetric(perOp, "cpu-ns/op")
		b.ReportMetric(float64(bytesPerOp)/perOp*1e3, "cpu-MB/s")
	}
}

// BenchmarkAnnotate adds the reordering window of Annotate, as capture
// uses it.
func BenchmarkAnnotate(b *testing.B) {
	xs, total := synthStream(b, 2000, 100, 1000)
	b.SetBytes(total / int64(len(xs)))
	b.ReportAllocs()
	b.ResetTimer()
	var src session.Source
	var cpu time.Duration
	start := testkit.CPUTime()
	for n := 0; n < b.N; n++ {
		if src == nil {
			b.StopTimer()
			cpu += testkit.CPUTime() - start
			for _, x := range xs {
				x.Session, x.Tokens = "", x.Tokens[:0]
			}
			tr, _ := NewTracker()
			src = tr.Annotate(session.NewSliceSource(xs...))
			start = testkit.CPUTime()
			b.StartTimer()
		}
		if _, err := src.Next(); err != nil {
			src = nil
			n--
		}
	}
	cpu += testkit.CPUTime() - start
	reportRates(b, cpu, total/int64(len(xs)))
}

func TestSynthStreamSessions(t *testing.T) {
	// The benchmark's stream is itself a lineage test: every user is one
	// session through 5 refreshes, a 401 and a logout.
	xs, _ := synthStream(t, 300, 100, 120)
	tr, err := NewTracker()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		tr.Observe(x)
	}
	tls := tr.Close()
	if len(tls) != 300 {
		t.Fatalf("%d sessions, want 300", len(tls))
	}
	for _, tl := range tls {
		if tl.Logins != 1 || tl.Refreshes != 5 || tl.Reactive != 2 || tl.Logouts != 1 || tl.Exchanges != 1+95+5+2+1 {
			t.Fatalf("timeline %+v", tl)
		}
	}
}
