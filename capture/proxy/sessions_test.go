package proxy

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/sim"
	"github.com/reprise-tool/reprise/session"
)

// TestRecordSessionsMatchSimulator runs the shop's simulated users through
// Record and checks the sessions stored in the recording against the
// simulator's ground truth, the way session/identity's acceptance test
// does for a tracker run by hand: one stored timeline per user session,
// each holding one user's requests of one login and never split, and the
// same logins, refreshes and reactive refreshes per session.
func TestRecordSessionsMatchSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shop and its users for a few seconds")
	}
	tests := []struct {
		name string
		cfg  func(*sim.Config)
	}{
		// One connection per user, some refreshing only after a 401, some
		// logging in again.
		{"mixed", nil},
		// Parallel connections: refreshes race requests in flight and a
		// token is used on several connections.
		{"parallel", func(c *sim.Config) { c.ParallelConns = 3; c.Seed = 3 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sim.Config{
				Seed: 1, Users: 20, ArrivalWindow: 500 * time.Millisecond,
				Think:    sim.LogNormal{Median: 100 * time.Millisecond, Sigma: 0.8},
				Duration: 60 * time.Second, MaxRequests: 20_000, MaxSessions: 2,
			}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			srv, err := shop.NewServer(shop.Config{AccessTTL: 2 * time.Second, Seed: cfg.Seed})
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Start("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			defer srv.Close()

			out := filepath.Join(t.TempDir(), "shop.rpz")
			listening := make(chan string, 1)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			type result struct {
				sum Summary
				err error
			}
			done := make(chan result, 1)
			go func() {
				sum, err := Record(ctx, RecordConfig{
					Listen: "127.0.0.1:0", Upstream: srv.URL(), Output: out,
					Duration: 2 * time.Minute, // a bound should the users hang
					OnListen: func(a string) { listening <- a },
				})
				done <- result{sum, err}
			}()
			var addr string
			select {
			case addr = <-listening:
			case r := <-done:
				t.Fatalf("proxy did not start: %v", r.err)
			}
			cfg.BaseURL = "http://" + addr
			truth, err := sim.Run(context.Background(), cfg)
			stop()
			r := <-done
			if err != nil {
				t.Fatal(err)
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if truth.Stop != "done" {
				t.Fatalf("simulation stopped by %q", truth.Stop)
			}

			rd, err := session.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			var xs []*session.Exchange
			for {
				x, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				xs = append(xs, x)
			}
			md := rd.Metadata()
			if len(md) != 1 || strings.Join(md[0].SessionRules, ",") != "auto" {
				t.Fatalf("metadata session rules %+v, want auto", md)
			}
			tls := rd.Timelines()
			if r.sum.Sessions != uint64(len(tls)) {
				t.Errorf("summary counts %d sessions, recording stores %d timelines", r.sum.Sessions, len(tls))
			}
			compareTruth(t, connUsers(t, xs), xs, tls, truth)
		})
	}
}

// connUsers finds which simulated user each connection belongs to, from
// the traffic itself and independently of the tracker: every connection
// carries a login (the user name in the body, which default redaction
// keeps) or a bearer JWT (the user in its sub claim).
func connUsers(t *testing.T, xs []*session.Exchange) map[uint64]string {
	t.Helper()
	users := map[uint64]string{}
	for _, x := range xs {
		var who string
		if tok, ok := strings.CutPrefix(x.Request.Header.Get("Authorization"), "Bearer "); ok {
			var c jwt.RegisteredClaims
			if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err == nil {
				who = c.Subject
			}
		}
		if who == "" && x.Request.Target == "/auth/login" {
			var m map[string]string
			if json.Unmarshal(x.Request.Body, &m) == nil {
				who = m["username"]
			}
		}
		if who == "" {
			continue
		}
		if u, ok := users[x.Conn.ID]; ok && u != who {
			t.Fatalf("connection %d carries users %s and %s", x.Conn.ID, u, who)
		}
		users[x.Conn.ID] = who
	}
	return users
}

type truthKey struct{ user, sid string }

// truthSessions gives the truth session of each of u's requests: a
// successful login belongs to the session it began (the simulator records
// the previous one on the login request itself).
func truthSessions(u sim.UserTruth) []truthKey {
	out := make([]truthKey, len(u.Requests))
	logins := 0
	for i, r := range u.Requests {
		sid := r.Session
		if r.Action == sim.ActLogin {
			if logins < len(u.Logins) {
				sid = u.Logins[logins].Session
			}
			logins++
		}
		out[i] = truthKey{u.ID, sid}
	}
	return out
}

// compareTruth pairs each user's recorded exchanges with its truth
// requests (by method and path, in order of start) and checks sessions,
// logins and refreshes against the stored timelines.
func compareTruth(t *testing.T, users map[uint64]string, xs []*session.Exchange, tls []session.Timeline, truth *sim.Truth) {
	t.Helper()
	type slot struct{ method, path string }
	byUser := map[string]map[slot][]*session.Exchange{}
	for _, x := range xs {
		who, ok := users[x.Conn.ID]
		if !ok {
			t.Fatalf("exchange %s %s on connection %d of no known user", x.Request.Method, x.Request.Target, x.Conn.ID)
		}
		if byUser[who] == nil {
			byUser[who] = map[slot][]*session.Exchange{}
		}
		k := slot{x.Request.Method, x.Request.Target}
		byUser[who][k] = append(byUser[who][k], x)
	}
	for _, m := range byUser {
		for _, l := range m {
			sort.SliceStable(l, func(i, j int) bool { return l[i].Timing.RequestStart < l[j].Timing.RequestStart })
		}
	}
	keyOf := map[truthKey]string{} // truth session -> stored key
	ownerOf := map[string]truthKey{}
	perKey := map[string][3]int{} // stored key -> truth logins, refreshes, reactive
	var wantLogins, wantRefreshes, wantReactive int
	for _, u := range truth.Users {
		sessions := truthSessions(u)
		next := map[slot]int{}
		for i, r := range u.Requests {
			if r.Err != "" || r.Status == 0 {
				continue // never answered
			}
			k := slot{r.Method, r.Path}
			l := byUser[u.ID][k]
			if next[k] >= len(l) {
				t.Fatalf("user %s: request %d %s %s not recorded", u.ID, r.Seq, r.Method, r.Path)
			}
			x := l[next[k]]
			next[k]++
			tk := sessions[i]
			switch {
			case tk.sid == "":
				if x.Session != "" {
					t.Errorf("user %s request %d %s %s: session %s, want none", u.ID, r.Seq, r.Method, r.Path, x.Session)
				}
				continue
			case x.Session == "":
				t.Errorf("user %s request %d %s %s (truth session %s): no session", u.ID, r.Seq, r.Method, r.Path, tk.sid)
				continue
			}
			if k0, ok := keyOf[tk]; ok && k0 != x.Session {
				t.Errorf("user %s request %d %s %s: session %s, but truth session %s was in %s: a split", u.ID, r.Seq, r.Method, r.Path, x.Session, tk.sid, k0)
			}
			if o, ok := ownerOf[x.Session]; ok && o != tk {
				t.Errorf("session %s holds requests of %v and %v: a merge", x.Session, o, tk)
			}
			keyOf[tk], ownerOf[x.Session] = x.Session, tk
		}
		for _, lg := range u.Logins {
			if lg.Status == 200 {
				wantLogins++
				k := keyOf[truthKey{u.ID, lg.Session}]
				c := perKey[k]
				c[0]++
				perKey[k] = c
			}
		}
		for _, f := range u.Refreshes {
			if f.Status != 200 {
				continue
			}
			wantRefreshes++
			k := keyOf[truthKey{u.ID, f.Session}]
			c := perKey[k]
			c[1]++
			if f.Reactive {
				wantReactive++
				c[2]++
			}
			perKey[k] = c
		}
	}
	if want := truth.Summary().Sessions; len(tls) != want || len(keyOf) != want {
		t.Errorf("%d timelines stored (%d matched), want %d (the users' sessions)", len(tls), len(keyOf), want)
	}
	var logins, refreshes, reactive int
	for _, tl := range tls {
		logins += tl.Logins
		refreshes += tl.Refreshes
		reactive += tl.Reactive
		want := perKey[tl.Key]
		if tl.Logins != want[0] || tl.Refreshes != want[1] || tl.Reactive != want[2] {
			t.Errorf("session %s (%v): logins %d refreshes %d reactive %d; truth %d %d %d",
				tl.Key, ownerOf[tl.Key], tl.Logins, tl.Refreshes, tl.Reactive, want[0], want[1], want[2])
		}
	}
	if logins != wantLogins || refreshes != wantRefreshes || reactive != wantReactive {
		t.Errorf("logins %d refreshes %d reactive %d; truth %d %d %d", logins, refreshes, reactive, wantLogins, wantRefreshes, wantReactive)
	}
	if wantRefreshes == 0 {
		t.Error("the run made no refresh: the test shows nothing about lineage")
	}
	t.Logf("%d exchanges, %d sessions, %d logins, %d refreshes (%d reactive)", len(xs), len(tls), logins, refreshes, reactive)
}
