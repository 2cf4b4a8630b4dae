package corrplan

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// ex makes an exchange of session sess at ms milliseconds.
func ex(sess string, ms int64, method, target string, reqHdr session.Headers, reqBody string, respHdr session.Headers, respBody string) *session.Exchange {
	return &session.Exchange{
		Session:  sess,
		Request:  session.Request{Method: method, Target: target, Header: reqHdr, Body: []byte(reqBody)},
		Response: session.Response{Status: 200, Header: respHdr, Body: []byte(respBody)},
		Timing:   session.Timing{RequestStart: ms * 1e6, ResponseEnd: ms*1e6 + 1e6},
	}
}

var jsonCT = session.Headers{{Name: "Content-Type", Value: "application/json"}}

// catalogue is a JSON body above bodyCacheFrom.
var catalogue = func() string {
	s := `{"items":[`
	for i := range 60 {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(`{"sku":"SKU-%05d","name":"item %d"}`, i, i)
	}
	return s + "]}"
}()

func TestBuilder(t *testing.T) {
	tests := []struct {
		name       string
		exchanges  []*session.Exchange
		rules      []session.CorrelationRule
		unreplaced []string // route + " " + place
	}{
		{
			// A per-response id nobody carries back is not planned: the
			// nginx benchmark's {"ok":true,"id":"$request_id"}.
			name: "ids nobody carries",
			exchanges: []*session.Exchange{
				ex("a", 1, "GET", "/json", nil, "", jsonCT, `{"ok":true,"id":"0123456789abcdef0123456789abcdef"}`),
				ex("a", 2, "GET", "/json", nil, "", jsonCT, `{"ok":true,"id":"fedcba9876543210fedcba9876543210"}`),
			},
			rules: []session.CorrelationRule{},
		},
		{
			// A login's token carried back as a bearer token, and a
			// cart id carried in a path and a JSON body.
			name: "login and cart",
			exchanges: []*session.Exchange{
				ex("a", 1, "POST", "/login", jsonCT, `{"user":"u"}`, jsonCT, `{"token":"tok-0123456789abcdef","expires":3600}`),
				ex("a", 2, "POST", "/carts", session.Headers{{Name: "Authorization", Value: "Bearer tok-0123456789abcdef"}}, "", jsonCT, `{"items":[{"id":"c1"},{"id":"c2"}]}`),
				ex("a", 3, "GET", "/carts/c2", nil, "", nil, ""),
				ex("a", 4, "POST", "/orders", jsonCT, `{"cart_id":"c1"}`, nil, ""),
			},
			rules: []session.CorrelationRule{
				{Route: "POST /carts", Field: "json:.items[*].id"},
				{Route: "POST /login", Field: "json:.token"},
			},
		},
		{
			// A cookie set by one response and sent by the next; a
			// hard-coded API key no response issued is unreplaced.
			name: "cookie and api key",
			exchanges: []*session.Exchange{
				ex("a", 1, "GET", "/?api_key=k3y-fixed-123", nil, "", session.Headers{{Name: "Set-Cookie", Value: "sid=s3ss10n-abcdef; Path=/"}}, ""),
				ex("a", 2, "GET", "/a?api_key=k3y-fixed-123", session.Headers{{Name: "Cookie", Value: "sid=s3ss10n-abcdef"}}, "", nil, ""),
			},
			rules:      []session.CorrelationRule{{Route: "GET /", Field: "cookie:sid"}},
			unreplaced: []string{"GET / query:api_key", "GET /a query:api_key"},
		},
		{
			// A value issued to another session is matched too (the
			// replay may key sessions otherwise), and a bearer token
			// from outside the recording is unreplaced.
			name: "across sessions",
			exchanges: []*session.Exchange{
				ex("a", 1, "POST", "/token", nil, "", jsonCT, `{"access_token":"abcdefghijklmnopqrstuvwxyz"}`),
				ex("b", 2, "GET", "/me", session.Headers{{Name: "Authorization", Value: "Bearer abcdefghijklmnopqrstuvwxyz"}}, "", nil, ""),
				ex("b", 3, "GET", "/you", session.Headers{{Name: "Authorization", Value: "Bearer zzzzzzzzzzzzzzzzzzzz"}}, "", nil, ""),
			},
			rules:      []session.CorrelationRule{{Route: "POST /token", Field: "json:.access_token"}},
			unreplaced: []string{"GET /you header:Authorization"},
		},
		{
			// HTTP/2's pseudo-header fields are no carried values, as
			// Host is not: :authority is the target's host, which the
			// replay writes itself, and :path is read as the target (its
			// id segment found there). The token in authorization is.
			name: "HTTP/2 pseudo-header fields",
			exchanges: []*session.Exchange{
				ex("a", 1, "POST", "/login", nil, "", jsonCT, `{"token":"tok-0123456789abcdef","order_id":"ord-778899"}`),
				ex("a", 2, "GET", "/orders/ord-778899", session.Headers{
					{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
					{Name: ":authority", Value: "shop.example.test"}, {Name: ":path", Value: "/orders/ord-778899"},
					{Name: "authorization", Value: "Bearer tok-0123456789abcdef"}}, "", jsonCT, `{"ok":true}`),
				ex("a", 3, "GET", "/me", session.Headers{
					{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
					{Name: ":authority", Value: "api.example.test:8443"}, {Name: ":path", Value: "/me"},
					{Name: ":protocol", Value: "websocket-session-key"}}, "", nil, ""),
			},
			rules: []session.CorrelationRule{
				{Route: "POST /login", Field: "json:.order_id"},
				{Route: "POST /login", Field: "json:.token"},
			},
		},
		{
			// A large body read once serves its copies: the second
			// session's copy (under another route) issues its values too.
			name: "identical large bodies",
			exchanges: []*session.Exchange{
				ex("a", 1, "GET", "/catalogue", nil, "", jsonCT, catalogue),
				ex("b", 2, "GET", "/catalogue.json", nil, "", jsonCT, catalogue),
				ex("b", 3, "GET", "/items/SKU-00042", nil, "", nil, ""),
			},
			rules: []session.CorrelationRule{{Route: "GET /catalogue.json", Field: "json:.items[*].sku"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(0)
			for _, x := range tt.exchanges {
				b.Add(x)
			}
			p := b.Plan()
			if !reflect.DeepEqual(p.Rules, tt.rules) {
				t.Errorf("rules = %v, want %v", p.Rules, tt.rules)
			}
			var got []string
			for _, u := range p.Unreplaced {
				got = append(got, u.Route+" "+u.Place)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.unreplaced) {
				t.Errorf("unreplaced = %v, want %v", got, tt.unreplaced)
			}
			if p.Exchanges != uint64(len(tt.exchanges)) {
				t.Errorf("exchanges = %d", p.Exchanges)
			}
		})
	}
}

// TestBuilderBounded: a long recording of many sessions keeps the
// Builder's memory bounded; idle sessions are dropped.
func TestBuilderBounded(t *testing.T) {
	b := NewBuilder(time.Second)
	for i := 0; i < 200000; i++ {
		sess := fmt.Sprintf("s%d", i/4)
		b.Add(ex(sess, int64(i), "GET", "/x", nil, "", jsonCT, fmt.Sprintf(`{"id":"%032x"}`, i)))
	}
	if b.total > maxValues || len(b.sessions) > 2000 {
		t.Fatalf("holding %d values in %d sessions", b.total, len(b.sessions))
	}
	if b.recent.len() > maxRecent {
		t.Fatalf("recent holds %d", b.recent.len())
	}
}

// TestRoutesBounded: a recording of ever new routes (no ids in them to
// fold) keeps the routes interned bounded.
func TestRoutesBounded(t *testing.T) {
	b := NewBuilder(0)
	for i := range 3 * maxOrigins {
		name := []byte("aaaaaa")
		for j, n := 0, i; j < len(name); j, n = j+1, n/26 {
			name[j] += byte(n % 26)
		}
		b.Add(ex("s", int64(i), "GET", "/w/"+string(name), nil, "", jsonCT, `{"token":"abcdefghijkl"}`))
	}
	if len(b.routes) > maxOrigins || b.nOrigins > maxOrigins {
		t.Fatalf("%d routes, %d origins interned", len(b.routes), b.nOrigins)
	}
}

func TestGeneralize(t *testing.T) {
	for in, want := range map[string]string{
		"json:.items[3].id":      "json:.items[*].id",
		"json:.a[10][2]":         "json:.a[*][*]",
		"cookie:sid":             "cookie:sid",
		"json:.odd[x]":           "json:.odd[x]",
		"json:.items[*].tags[0]": "json:.items[*].tags[*]",
	} {
		if got := Generalize(in); got != want {
			t.Errorf("Generalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIndex(t *testing.T) {
	x := NewIndex(&session.CorrelationPlan{Rules: []session.CorrelationRule{
		{Route: "POST /login", Field: "json:.token"},
		{Route: "GET /", Field: "cookie:sid"},
	}})
	if !x.Learns("POST /login") || x.Learns("GET /json") || !x.NeedsBody("POST /login") || x.NeedsBody("GET /") {
		t.Fatal("index answers wrong")
	}
	f := x.Filter("POST /login", map[string]Field{"json:.token": {Value: "t"}, "json:.id": {Value: "i"}})
	if len(f) != 1 || f["json:.token"].Value != "t" {
		t.Fatalf("filter = %v", f)
	}
	var none *Index
	if !none.Learns("x") || !none.NeedsBody("x") {
		t.Fatal("no plan must learn everything")
	}
}

func TestUncarrying(t *testing.T) {
	for name, want := range map[string]bool{
		"Host": true, "host": true, "User-Agent": true,
		":authority": true, ":path": true, ":method": true, ":scheme": true, ":protocol": true,
		"Authorization": false, "authorization": false, "Cookie": false, "X-Api-Key": false, "authority": false,
	} {
		if got := Uncarrying(name); got != want {
			t.Errorf("Uncarrying(%q) = %v, want %v", name, got, want)
		}
	}
}
