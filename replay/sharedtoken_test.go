package replay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// tokenIssuer is a login service: POST /login answers a fresh token
// after a short pause, GET /api wants one it issued, else 401.
type tokenIssuer struct {
	mu     sync.Mutex
	tokens map[string]bool
	denied int
	served int
}

func (s *tokenIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/login":
		time.Sleep(5 * time.Millisecond) // a request carrying the token must wait for it
		b := make([]byte, 16)
		rand.Read(b)
		tok := "tok-" + hex.EncodeToString(b)
		s.mu.Lock()
		s.tokens[tok] = true
		s.mu.Unlock()
		fmt.Fprintf(w, `{"token":%q}`, tok)
	case "/api":
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		ok := s.tokens[tok]
		if ok {
			s.served++
		} else {
			s.denied++
		}
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthorized"}`)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}
}

// TestTokenSharedAcrossConnections records, through the recording proxy
// with its default redaction, a client that logs in on one connection
// and sends the token on its others, as a browser does, and replays it
// with each connection a session (--session-keys connection). Every call
// must carry the live token of the login it followed in the recording,
// which another session issued: none may be refused, and none may go
// before that login's response.
func TestTokenSharedAcrossConnections(t *testing.T) {
	const conns, logins, calls = 4, 6, 5 // calls per connection and login
	recSrv := &tokenIssuer{tokens: map[string]bool{}}
	up := httptest.NewServer(recSrv)
	defer up.Close()
	path := filepath.Join(t.TempDir(), "shared.rpz")
	addr, stop := shoptest.StartRecord(t, proxy.RecordConfig{Upstream: up.URL, Output: path})
	clients := make([]*http.Client, conns)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
		defer clients[i].CloseIdleConnections()
	}
	do := func(c *http.Client, req *http.Request) string {
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("recording: %s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, b)
		}
		return string(b)
	}
	for l := 0; l < logins; l++ {
		login, _ := http.NewRequest("POST", "http://"+addr+"/login", strings.NewReader(`{"user":"u"}`))
		login.Header.Set("Content-Type", "application/json")
		body := do(clients[l%conns], login) // each login on another connection
		tok := strings.TrimSuffix(strings.TrimPrefix(body, `{"token":"`), `"}`)
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range calls {
					req, _ := http.NewRequest("GET", "http://"+addr+"/api", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					do(clients[c], req)
				}
			}()
		}
		wg.Wait()
	}
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	wantCalls := logins * conns * calls

	plan := surveyPlanOf(t, path)
	for _, tc := range []struct {
		name  string
		pacer Pacer
		conns string
	}{
		{"max", Max{}, ConnectionsRecorded},
		{"1x", Speed(1), ConnectionsRecorded},
		{"max pooled", Max{}, ConnectionsPooled}, // any connection carries any call
	} {
		t.Run(tc.name, func(t *testing.T) {
			live := &tokenIssuer{tokens: map[string]bool{}}
			target := httptest.NewServer(live)
			defer target.Close()
			rd, err := session.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			src, err := identity.WithSessionKeys(session.KeysConnection, rd.Metadata(), rd)
			if err != nil {
				t.Fatal(err)
			}
			var res results
			rep := run(t, target.URL, src, WithPacer(tc.pacer), WithConnections(tc.conns), WithMaxInFlight(64), WithPlan(plan), WithObserver(&res))
			live.mu.Lock()
			denied, served := live.denied, live.served
			live.mu.Unlock()
			if denied != 0 || served != wantCalls {
				t.Errorf("the target refused %d calls and served %d, want 0 and %d (status %v, %d learned, %d substituted)",
					denied, served, wantCalls, rep.StatusCodes, rep.Correlation.Learned, rep.Correlation.Substituted)
			}
			if rep.Sessions.Total != conns {
				t.Errorf("%d sessions, want one per connection (%d)", rep.Sessions.Total, conns)
			}
			// No call goes before the response to the login whose token it
			// carries: the latest login recorded before it.
			type login struct {
				offset time.Duration
				done   time.Time
			}
			var ls []login
			for _, r := range res.get() {
				if r.Route == "POST /login" {
					ls = append(ls, login{r.Offset, r.Done})
				}
			}
			for _, r := range res.get() {
				if r.Route != "GET /api" || r.Sent.IsZero() {
					continue
				}
				var last *login
				for i := range ls {
					if ls[i].offset < r.Offset && (last == nil || ls[i].offset > last.offset) {
						last = &ls[i]
					}
				}
				if last == nil || r.Sent.Before(last.done) {
					t.Errorf("the call recorded at %v went before the response to the login it followed (%+v)", r.Offset, last)
				}
			}
		})
	}
}

// surveyPlanOf is the plan the CLI replays path with.
func surveyPlanOf(t *testing.T, path string) *session.CorrelationPlan {
	t.Helper()
	rd, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	sv, err := SurveyRecording(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	return sv.Plan
}
