package replay

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/session"
)

// authServer is a small token server in the style of OAuth2: a login
// issues an access and a rotating refresh token and a session cookie;
// every other call checks them. It counts what a replay without live
// values would get wrong.
type authServer struct {
	mu       sync.Mutex
	password string
	access   map[string]string // token -> user
	refresh  map[string]string // live refresh token -> user
	used     map[string]bool   // refresh tokens already rotated
	cookies  map[string]bool
	orders   map[string]string // order id -> access token's user
	nextID   int
	bad      []string // what went wrong, in words
	logins   int
}

func newAuthServer(password string) *authServer {
	return &authServer{password: password, access: map[string]string{}, refresh: map[string]string{},
		used: map[string]bool{}, cookies: map[string]bool{}, orders: map[string]string{}, nextID: 100}
}

func token(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (s *authServer) fail(w http.ResponseWriter, code int, why string) {
	s.bad = append(s.bad, why)
	http.Error(w, why, code)
}

func (s *authServer) issue(w http.ResponseWriter, user string) {
	at, rt := token("at-"), token("rt-")
	s.access[at], s.refresh[rt] = user, user
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": at, "refresh_token": rt, "expires_in": 900})
}

func (s *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ParseForm()
	switch {
	case r.URL.Path == "/login":
		if r.PostForm.Get("password") != s.password {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		s.logins++
		c := token("ck-")
		s.cookies[c] = true
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: c, Path: "/"})
		s.issue(w, r.PostForm.Get("username"))
		return
	case r.URL.Path == "/refresh":
		rt := r.PostForm.Get("refresh_token")
		user, ok := s.refresh[rt]
		if !ok || s.used[rt] {
			s.fail(w, 400, "refresh with unknown or reused token "+rt)
			return
		}
		s.used[rt] = true
		s.issue(w, user)
		return
	}
	at := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	user, ok := s.access[at]
	if !ok {
		s.fail(w, 401, r.URL.Path+": unknown access token "+at)
		return
	}
	if c, err := r.Cookie("sid"); err != nil || !s.cookies[c.Value] {
		s.fail(w, 401, r.URL.Path+": unknown session cookie")
		return
	}
	switch {
	case r.URL.Path == "/orders" && r.Method == "POST":
		s.nextID++
		id := strconv.Itoa(s.nextID)
		s.orders[id] = user
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"order":{"id":%s,"status":"open"}}`, id)
	case strings.HasPrefix(r.URL.Path, "/orders/"):
		id := strings.TrimPrefix(r.URL.Path, "/orders/")
		if s.orders[id] != user {
			s.fail(w, 404, "order "+id+" not this user's")
			return
		}
		var body struct {
			OrderID json.Number `json:"order_id"`
		}
		if r.Method == "POST" {
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.OrderID.String() != id {
				s.fail(w, 400, "order body names "+body.OrderID.String()+", path "+id)
				return
			}
		}
		if q := r.URL.Query().Get("order"); q != "" && q != id {
			s.fail(w, 400, "query names order "+q)
			return
		}
		fmt.Fprint(w, `{}`)
	default:
		fmt.Fprint(w, `{"ok":true}`)
	}
}

// userSession is a recording of one user: login, calls, a refresh with
// rotation, an order created and then used in a path, a query and a JSON
// body. Its recorded values are all different from what any live server
// issues, so nothing passes unless substituted.
func userSession(sess, user, password string, at0 float64) []*session.Exchange {
	form := "application/x-www-form-urlencoded"
	j := "application/json"
	auth := func(tok string) func(*session.Exchange) {
		return withHeader("Authorization", "Bearer "+tok)
	}
	ck := withHeader("Cookie", "theme=dark; sid=rec-cookie-"+sess)
	return []*session.Exchange{
		rec(sess, "POST", "/login", at0, at0+5, withBody(form, "grant_type=password&username="+user+"&password="+password),
			withResponse(200, j, `{"access_token":"rec-access-1-`+sess+`","refresh_token":"rec-refresh-1-`+sess+`","expires_in":900}`, "Set-Cookie", "sid=rec-cookie-"+sess+"; Path=/")),
		rec(sess, "GET", "/me", at0+10, at0+12, auth("rec-access-1-"+sess), ck),
		rec(sess, "POST", "/refresh", at0+20, at0+25, withBody(form, "grant_type=refresh_token&refresh_token=rec-refresh-1-"+sess),
			withResponse(200, j, `{"access_token":"rec-access-2-`+sess+`","refresh_token":"rec-refresh-2-`+sess+`","expires_in":900}`)),
		rec(sess, "POST", "/orders", at0+30, at0+35, auth("rec-access-2-"+sess), ck, withBody(j, `{"item":"book"}`),
			withResponse(201, j, `{"order":{"id":7,"status":"open"}}`)),
		rec(sess, "GET", "/orders/7?order=7", at0+40, at0+42, auth("rec-access-2-"+sess), ck),
		rec(sess, "POST", "/orders/7", at0+50, at0+52, auth("rec-access-2-"+sess), ck, withBody(j, `{"order_id": 7, "note": "x"}`)),
		rec(sess, "POST", "/refresh", at0+60, at0+65, withBody(form, "grant_type=refresh_token&refresh_token=rec-refresh-2-"+sess),
			withResponse(200, j, `{"access_token":"rec-access-3-`+sess+`","refresh_token":"rec-refresh-3-`+sess+`","expires_in":900}`)),
		rec(sess, "GET", "/me", at0+70, at0+72, auth("rec-access-3-"+sess), ck),
	}
}

// TestLiveValues replays two users against the token server: every token,
// cookie and order id must be the live one, refreshes must rotate, and
// nothing may be flagged.
func TestLiveValues(t *testing.T) {
	for _, scale := range []int{1, 3} {
		t.Run("scale"+strconv.Itoa(scale), func(t *testing.T) {
			as := newAuthServer("pw")
			srv := newScripted(t, as.ServeHTTP)
			src := source(append(userSession("u1", "alice", "pw", 0), userSession("u2", "bob", "pw", 3)...)...)
			rep := run(t, srv.URL, src, WithPacer(Speed(10)), WithScale(scale))
			as.mu.Lock()
			defer as.mu.Unlock()
			if len(as.bad) > 0 {
				t.Fatalf("server saw %d bad requests: %q", len(as.bad), as.bad)
			}
			if as.logins != 2*scale {
				t.Errorf("logins %d, want %d", as.logins, 2*scale)
			}
			if rep.Requests.Responses != uint64(16*scale) || rep.Requests.Uncorrelated != 0 {
				t.Errorf("requests %+v", rep.Requests)
			}
			if rep.Sessions.Completed != uint64(2*scale) || rep.Sessions.Total != uint64(2*scale) {
				t.Errorf("sessions %+v %v", rep.Sessions, rep.Problems)
			}
			if rep.StatusMismatch != 0 {
				t.Errorf("status mismatches %d: %v", rep.StatusMismatch, rep.StatusCodes)
			}
			for _, rt := range rep.Routes {
				if rt.Route == "GET /orders/{id}" && rt.Requests != uint64(2*scale) {
					t.Errorf("route %s: %d requests", rt.Route, rt.Requests)
				}
			}
		})
	}
}

// A login that fails on the target leaves the session's later requests
// uncorrelated: skipped by default, sent as recorded when asked.
func TestUncorrelated(t *testing.T) {
	tests := []struct {
		policy    string
		wantSent  uint64
		wantSkips uint64
	}{
		{UncorrelatedSkip, 1, 7}, // only the failed login goes out
		{UncorrelatedSend, 8, 0}, // everything goes, with dead tokens
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			as := newAuthServer("the-real-one")
			srv := newScripted(t, as.ServeHTTP)
			rep := run(t, srv.URL, source(userSession("u1", "alice", "wrong", 0)...), WithPacer(Max{}), WithUncorrelated(tt.policy))
			if rep.Requests.Sent != tt.wantSent || rep.Requests.Skipped != tt.wantSkips || rep.Requests.Uncorrelated != 7 {
				t.Fatalf("requests %+v", rep.Requests)
			}
			if rep.Sessions.Uncorrelated != 1 || len(rep.Problems) != 1 {
				t.Fatalf("sessions %+v %v", rep.Sessions, rep.Problems)
			}
		})
	}
}

// Credentials replace redacted logins; each session gets its own user.
func TestCredentials(t *testing.T) {
	as := newAuthServer("staging-pw")
	srv := newScripted(t, as.ServeHTTP)
	src := source(append(userSession("u1", "h%3Aa1b2", "h%3Ac3d4", 0), userSession("u2", "h%3Ae5f6", "h%3Ac3d4", 1)...)...)
	creds := []correlate.Credential{{User: "alice", Password: "staging-pw"}, {User: "bob", Password: "staging-pw"}}
	rep := run(t, srv.URL, src, WithPacer(Max{}), WithCredentials(creds))
	if len(as.bad) > 0 || as.logins != 2 || rep.Correlation.Credentials != 2 {
		t.Fatalf("bad %q logins %d credentials %d", as.bad, as.logins, rep.Correlation.Credentials)
	}
	users := map[string]bool{}
	for _, a := range srv.arrivals() {
		if a.Path == "/login" {
			users[a.Body[strings.Index(a.Body, "username=")+9:strings.Index(a.Body, "&password")]] = true
		}
	}
	if !users["alice"] || !users["bob"] {
		t.Errorf("logins used %v, want alice and bob", users)
	}
}

// A request the recording's server refused (401: its token had expired)
// is sent as recorded by default, so the target refuses it too and the
// recorded refresh and retry do what they did; "live" sends it with the
// live token; "skip" leaves it out.
func TestRejectedInRecording(t *testing.T) {
	tests := []struct {
		policy   string
		wantMe   int  // /me requests at the server
		liveAuth bool // the first /me carried the live token
	}{
		{RejectedAsRecorded, 2, false},
		{RejectedLive, 2, true},
		{RejectedSkip, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			as := newAuthServer("pw")
			srv := newScripted(t, as.ServeHTTP)
			s := userSession("u1", "alice", "pw", 0)
			// The first /me of the recording was refused.
			s[1].Response = session.Response{Status: 401, Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"error":"invalid_token"}`)}
			rep := run(t, srv.URL, source(s...), WithPacer(Max{}), WithRejected(tt.policy))
			var me []*arrival
			for _, a := range srv.arrivals() {
				if a.Path == "/me" {
					me = append(me, a)
				}
			}
			if len(me) != tt.wantMe {
				t.Fatalf("%d /me requests, want %d", len(me), tt.wantMe)
			}
			live := me[0].Header.Get("Authorization") != "Bearer rec-access-1-u1"
			if live != tt.liveAuth {
				t.Errorf("first /me carried %q", me[0].Header.Get("Authorization"))
			}
			wantRejected := uint64(1)
			if tt.policy == RejectedLive {
				wantRejected = 0
			}
			if rep.Correlation.Rejected != wantRejected {
				t.Errorf("rejected count %d", rep.Correlation.Rejected)
			}
			if tt.policy == RejectedAsRecorded && rep.StatusMismatch != 0 {
				t.Errorf("status mismatches %d: the refusal should be reproduced", rep.StatusMismatch)
			}
		})
	}
}
