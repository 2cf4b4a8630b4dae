package shadow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// paced yields a SliceSource's exchanges with a pause before each, as
// live traffic arrives over time.
type paced struct {
	shoptest.SliceSource
	pause time.Duration
}

func (p *paced) Next() (*session.Exchange, error) {
	time.Sleep(p.pause)
	return p.SliceSource.Next()
}

var tsNow = time.Now().UnixNano()

func ex(conn uint64, method, target string, hdr session.Headers, body string, status int, respBody string) *session.Exchange {
	tsNow += int64(time.Millisecond)
	return &session.Exchange{
		Conn:     session.Conn{ID: conn},
		Request:  session.Request{Method: method, Target: target, Proto: "HTTP/1.1", Header: hdr, Body: []byte(body), BodySize: int64(len(body))},
		Response: session.Response{Proto: "HTTP/1.1", Status: status, Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(respBody), BodySize: int64(len(respBody))},
		Timing:   session.Timing{RequestStart: tsNow, RequestEnd: tsNow + 1, ResponseStart: tsNow + 2, ResponseEnd: tsNow + 3},
	}
}

// seenServer records "METHOD path auth" of every request, and answers a
// login with its own tokens.
type seenServer struct {
	mu   sync.Mutex
	seen []string
	n    int
}

func (s *seenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.seen = append(s.seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("X-User"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/auth/login" {
		fmt.Fprintf(w, `{"access_token":"shadow-access-%08d","token_type":"Bearer","expires_in":60,"refresh_token":"shadow-refresh-%08d"}`, n, n)
		return
	}
	io.WriteString(w, `{}`)
}

func (s *seenServer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// Safe methods only by default; --allow-auth adds logins (and the session
// then carries the shadow's token); --allow-writes adds everything.
func TestMethodsAndAuth(t *testing.T) {
	session := func() []*session.Exchange {
		login := ex(1, "POST", "/auth/login", session.Headers{{Name: "Content-Type", Value: "application/x-www-form-urlencoded"}},
			"username=ann&password=pw", 200, `{"access_token":"real-access-token-0001","token_type":"Bearer","expires_in":60,"refresh_token":"real-refresh-token-0001"}`)
		auth := session.Headers{{Name: "Authorization", Value: "Bearer real-access-token-0001"}}
		return []*session.Exchange{login,
			ex(1, "GET", "/api/cart", auth, "", 200, `{}`),
			ex(1, "POST", "/api/cart/items", append(auth, session.Header{Name: "Content-Type", Value: "application/json"}), `{"product_id":1}`, 201, `{}`),
		}
	}
	cases := []struct {
		name        string
		writes      bool
		auth        bool
		want        []string
		wantSkipped map[string]uint64
	}{
		// Reads only: the login and the write are skipped, the read goes with the real token.
		{name: "default", want: []string{"GET /api/cart Bearer real-access-token-0001 "},
			wantSkipped: map[string]uint64{"auth": 1, "write": 1}},
		// With --allow-auth the login is mirrored and the read carries the shadow's token.
		{name: "allow-auth", auth: true, want: []string{"POST /auth/login  ", "GET /api/cart Bearer shadow-access-00000001 "},
			wantSkipped: map[string]uint64{"write": 1}},
		// With --allow-writes everything is mirrored.
		{name: "allow-writes", writes: true, want: []string{"POST /auth/login  ", "GET /api/cart Bearer shadow-access-00000001 ", "POST /api/cart/items Bearer shadow-access-00000001 "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := &seenServer{}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			m, err := New(Config{Shadow: hs.URL, AllowWrites: tc.writes, AllowAuth: tc.auth, NoiseShare: -1})
			if err != nil {
				t.Fatal(err)
			}
			sum, err := m.Run(context.Background(), &shoptest.SliceSource{Exchanges: session()})
			if err != nil {
				t.Fatal(err)
			}
			got := srv.lines()
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("shadow saw %q, want %q", got, tc.want)
			}
			if fmt.Sprint(sum.Stats.Skipped) != fmt.Sprint(tc.wantSkipped) && !(len(tc.wantSkipped) == 0 && len(sum.Stats.Skipped) == 0) {
				t.Errorf("skipped %v, want %v", sum.Stats.Skipped, tc.wantSkipped)
			}
		})
	}
}

// --sample takes whole sessions: every sampled user's requests all reach
// the shadow, and about the asked share of users is sampled.
func TestSampleWholeSessions(t *testing.T) {
	srv := &seenServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	var xs []*session.Exchange
	const users, per = 200, 5
	for r := 0; r < per; r++ {
		for u := 0; u < users; u++ {
			xs = append(xs, ex(uint64(u*per+r), "GET", "/api/x", session.Headers{{Name: "X-User", Value: fmt.Sprintf("u%03d", u)}}, "", 200, `{}`))
		}
	}
	m, err := New(Config{Shadow: hs.URL, Sample: 0.3, NoiseShare: -1, Identity: []identity.Option{identity.WithRuleText("header:X-User")}})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := m.Run(context.Background(), &shoptest.SliceSource{Exchanges: xs})
	if err != nil {
		t.Fatal(err)
	}
	byUser := map[string]int{}
	for _, l := range srv.lines() {
		byUser[l[strings.LastIndexByte(l, ' ')+1:]]++
	}
	for u, n := range byUser {
		if n != per {
			t.Errorf("user %s: %d of %d requests mirrored; sessions must be whole", u, n, per)
		}
	}
	if len(byUser) < users*15/100 || len(byUser) > users*45/100 {
		t.Errorf("%d of %d users sampled at 30%%", len(byUser), users)
	}
	if sum.Stats.Unsampled != uint64((users-len(byUser))*per) {
		t.Errorf("unsampled %d, want %d", sum.Stats.Unsampled, (users-len(byUser))*per)
	}
}

// A guard that trips stops the feeding: the rest is shed as "stopped" and
// Run reports the trip.
func TestGuardStopsFeeding(t *testing.T) {
	rules, err := guard.ParseRules("error_rate>50%")
	if err != nil {
		t.Fatal(err)
	}
	var xs []*session.Exchange
	for i := 0; i < 250; i++ {
		xs = append(xs, ex(uint64(i), "GET", "/api/x", nil, "", 200, `{}`))
	}
	m, err := New(Config{Shadow: deadURL(t), Abort: rules, AbortWindow: 2 * time.Second, NoiseShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := m.Run(context.Background(), &paced{shoptest.SliceSource{Exchanges: xs}, 10 * time.Millisecond})
	var abort *guard.AbortError
	if !errors.As(err, &abort) {
		t.Fatalf("Run returned %v, want an abort", err)
	}
	if sum.Trip == nil || sum.Stats.Shed["stopped"] == 0 {
		t.Errorf("trip %v, stats %+v", sum.Trip, sum.Stats)
	}
	t.Logf("%s; %+v", sum.Trip.Reason(), sum.Stats)
}
