package replay

import (
	"net/http"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// TestOrderRule checks the session order rule: a request waits for every
// request of its session that completed before it started in the
// recording; overlapping requests may overlap; sessions and connections
// are independent. The server holds /a until /b arrives (or 2s pass):
// when /b may overlap /a it arrives while /a is held; when it must wait,
// /a is released by the timeout and /b arrives after /a completed.
func TestOrderRule(t *testing.T) {
	cases := []struct {
		name     string
		src      *session.SliceSource
		mustWait bool // /b must not reach the server before /a completed
	}{
		// /a completed (10ms) before /b started (20ms): /b waits.
		{"completed before started", source(rec("s", "GET", "/a", 0, 10), rec("s", "GET", "/b", 20, 30)), true},
		// /b started (5ms) while /a was in flight (to 10ms): they may overlap.
		{"overlapping", source(rec("s", "GET", "/a", 0, 10), rec("s", "GET", "/b", 5, 30)), false},
		// /b started exactly when /a completed: completed-before counts the boundary.
		{"touching", source(rec("s", "GET", "/a", 0, 10), rec("s", "GET", "/b", 10, 30)), true},
		// Another session never waits.
		{"other session", source(rec("s", "GET", "/a", 0, 10), rec("t", "GET", "/b", 20, 30)), false},
		// Without session keys the connection is the session.
		{"same connection", source(rec("", "GET", "/a", 0, 10, onConn(1)), rec("", "GET", "/b", 20, 30, onConn(1))), true},
		{"other connection", source(rec("", "GET", "/a", 0, 10, onConn(1)), rec("", "GET", "/b", 20, 30, onConn(2))), false},
		// A recorded request that never got a response never completed: nothing waits for it.
		{"no response", source(rec("s", "GET", "/a", 0, 0, noResponse), rec("s", "GET", "/b", 20, 30)), false},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var srv *scripted
			srv = newScripted(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/a" {
					srv.waitForWithin("/b", 1500*time.Millisecond)
				}
			})
			var res results
			rep := run(t, srv.URL, tt.src, WithPacer(Max{}), WithObserver(&res))
			if rep.Requests.Responses != 2 {
				t.Fatalf("responses %d, want 2 (%s)", rep.Requests.Responses, rep.Failure)
			}
			a, b := srv.find(t, "/a"), srv.find(t, "/b")
			waited := !b.At.Before(a.Done)
			if waited != tt.mustWait {
				t.Fatalf("/b waited for /a: %v, want %v (a %v-%v, b %v)", waited, tt.mustWait, a.At, a.Done, b.At)
			}
			if tt.mustWait && rep.OrderWait.Count == 0 {
				t.Errorf("order wait not counted")
			}
		})
	}
}

// waitForWithin waits until path has arrived or d passed.
func (s *scripted) waitForWithin(path string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, a := range s.arrivals() {
			if a.Path == path {
				return true
			}
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// A chain of requests keeps its order even when the target answers them
// at different speeds, while independent sessions interleave.
func TestOrderChain(t *testing.T) {
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("slow") != "" {
			time.Sleep(20 * time.Millisecond)
		}
	})
	src := source()
	for i := 0; i < 10; i++ {
		for _, s := range []string{"x", "y"} {
			q := ""
			if i%2 == 0 {
				q = "?slow=1"
			}
			src.Exchanges = append(src.Exchanges, rec(s, "GET", "/"+s+"/"+string(rune('0'+i))+q, float64(i*10), float64(i*10+5)))
		}
	}
	run(t, srv.URL, src, WithPacer(Max{}))
	last := map[string]*arrival{}
	for _, a := range srv.arrivals() {
		s := a.Path[1:2]
		if p := last[s]; p != nil && (a.Path < p.Path || a.At.Before(p.Done)) {
			t.Errorf("%s arrived before %s completed", a.Path, p.Path)
		}
		last[s] = a
	}
}

// A request carrying a value that an earlier request's response issued
// waits for that request, even when the recording's timestamps say they
// overlapped (a proxy may stamp the next request of a connection a few
// microseconds before the end of the response that came first).
func TestDataDependency(t *testing.T) {
	var srv *scripted
	srv = newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			srv.waitForWithin("/me", 300*time.Millisecond)
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"LIVE-TOKEN-0123456789"}`))
		}
	})
	src := source(
		rec("s", "POST", "/login", 0, 10, withResponse(200, "application/json", `{"access_token":"REC-TOKEN-0123456789"}`)),
		rec("s", "GET", "/me", 9.99, 20, withHeader("Authorization", "Bearer REC-TOKEN-0123456789")),
	)
	rep := run(t, srv.URL, src, WithPacer(Max{}))
	me := srv.find(t, "/me")
	if got := me.Header.Get("Authorization"); got != "Bearer LIVE-TOKEN-0123456789" {
		t.Errorf("/me carried %q: it did not wait for the login", got)
	}
	if rep.Requests.Uncorrelated != 0 {
		t.Errorf("requests %+v", rep.Requests)
	}
}
