package correlate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// BenchmarkLearn aligns a typical token response with its live twin.
func BenchmarkLearn(b *testing.B) {
	rec := jsonResp(`{"access_token":"eyJhbGciOiJIUzI1NiJ9.recorded.signature","token_type":"Bearer","expires_in":60,"refresh_token":"rt_0123456789abcdef"}`, "Set-Cookie", "shop_session=abcdef0123456789; Path=/")
	live := jsonResp(`{"access_token":"eyJhbGciOiJIUzI1NiJ9.live.signature-xyz","token_type":"Bearer","expires_in":60,"refresh_token":"rt_fedcba9876543210"}`, "Set-Cookie", "shop_session=9876543210fedcba; Path=/")
	b.SetBytes(int64(len(rec.Body) + len(live.Body)))
	b.ReportAllocs()
	tb := NewTable()
	for i := 0; i < b.N; i++ {
		tb.Learn(rec, live)
	}
}

// BenchmarkRewrite substitutes into a request with a bearer token, a
// cookie, an id in the path and a JSON body.
func BenchmarkRewrite(b *testing.B) {
	tb := learned(b)
	req := session.Request{Method: "POST", Target: "/orders/7/items?order=7",
		Header: session.Headers{{Name: "Authorization", Value: "Bearer RECORDED-ACCESS-TOKEN-1"}, {Name: "Cookie", Value: "sid=recsid01"},
			{Name: "Content-Type", Value: "application/json"}, {Name: "User-Agent", Value: "bench"}},
		Body: []byte(`{"order_id": 7, "items": [{"sku": "b-1", "qty": 2}], "note": "` + strings.Repeat("x", 200) + `"}`)}
	b.SetBytes(int64(len(req.Body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tb.Rewrite(&req)
	}
}

// BenchmarkRewriteShared substitutes a bearer token into a request with
// a few plain headers, in a session whose table and run table hold a
// thousand tokens learned from earlier logins (the nginx benchmark's
// token flow: a login every fourth request).
func BenchmarkRewriteShared(b *testing.B) {
	run := NewRunTable()
	tb := NewSessionTable(run)
	for i := range 1000 {
		tb.Map(fmt.Sprintf("rec-token-%032d", i), fmt.Sprintf("live-token-%032d", i))
	}
	req := session.Request{Method: "GET", Target: "/api",
		Header: session.Headers{{Name: "Host", Value: "127.0.0.1:8080"}, {Name: "Authorization", Value: fmt.Sprintf("Bearer rec-token-%032d", 999)},
			{Name: "Accept", Value: "application/json, text/plain, */*"}, {Name: "User-Agent", Value: "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"}}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out, rw := tb.RewriteAt(&req, 5)
		if rw.Substituted != 1 || !strings.HasPrefix(out.Header[1].Value, "Bearer live-") {
			b.Fatal(rw)
		}
	}
}

// BenchmarkLearnShared learns a login's token the way the nginx
// benchmark's token flow does, once every table is at its bound: 64
// sessions share a run table, each keeps its newest 128 values (the
// replay's budget of 8192 divided between them), and every token is
// new. Each op names the login to the run table as under way, learns
// its live token (evicting the oldest one of the session and of the run
// table) and settles it. The tokens are random hex, as nginx's
// $request_id, or JWTs, which all start with the same bytes.
func BenchmarkLearnShared(b *testing.B) {
	for _, kind := range []struct {
		name  string
		token func(i int) string
	}{
		{"random", func(i int) string { return fmt.Sprintf("tok-%016x%016x", uint64(i)*0x9E3779B97F4A7C15, i) }},
		{"jwt", func(i int) string {
			return fmt.Sprintf("eyJhbGciOiJIUzI1NiJ9.%016x%016x.c2lnbmF0dXJl", uint64(i)*0x9E3779B97F4A7C15, i)
		}},
	} {
		b.Run(kind.name, func(b *testing.B) { benchLearnShared(b, kind.token) })
	}
}

func benchLearnShared(b *testing.B, token func(int) string) {
	const sessions, pool = 64, 1 << 14
	run := NewRunTable()
	run.SetSessionLimit(8192 / sessions)
	tabs := make([]*Table, sessions)
	for i := range tabs {
		tabs[i] = NewSessionTable(run)
	}
	recs := make([]string, pool)
	fields := make([]map[string]Field, pool)
	lives := make([]*session.Response, pool)
	for i := range pool {
		recs[i] = token(i)
		fields[i] = map[string]Field{"json:.token": {Value: recs[i]}}
		lives[i] = jsonResp(`{"token":"` + token(i+pool) + `"}`)
	}
	learn := func(i int) {
		k := i % pool
		issued := recs[k : k+1]
		run.Issuing(issued, uint64(i+1), k)
		if n := tabs[i%sessions].LearnFields(fields[k], lives[k]); n != 1 {
			b.Fatalf("learned %d values, want 1", n)
		}
		run.Settle(issued, uint64(i+1))
	}
	for i := range 2 * maxRunValues { // every table at its bound
		learn(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		learn(2*maxRunValues + i)
	}
}
