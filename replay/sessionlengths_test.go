package replay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// lengthsRecording writes a recording of many one-request sessions among
// a few longer ones: flows that log in and carry the live token on four
// later requests spread over the recording (a session released early
// would lose it, and its requests be refused); sessions whose last
// request the run leaves out (excluded by path: they never reach their
// count and must be held); and sessions whose one request fails. Each
// session is on a connection of its own, so that connection keys give
// the same sessions.
func lengthsRecording(t *testing.T, ones int) string {
	t.Helper()
	var exs []*session.Exchange
	conn := uint64(0)
	next := func() uint64 { conn++; return conn }
	for i := range ones {
		exs = append(exs, rec(fmt.Sprintf("one-%d", i), "GET", "/one", float64(i), float64(i)+0.5, onSession(next())))
	}
	for f := range 30 {
		key, c, tok := fmt.Sprintf("flow-%d", f), next(), fmt.Sprintf("tok-%032x", f)
		at := float64(f * ones / 30)
		exs = append(exs, rec(key, "POST", "/login", at, at+0.5, onSession(c),
			withResponse(200, "application/json", `{"token":"`+tok+`"}`)))
		for k := 1; k <= 4; k++ {
			at := at + float64(k*ones/8)
			exs = append(exs, rec(key, "GET", "/api/"+strconv.Itoa(k), at, at+0.5, onSession(c),
				withHeader("Authorization", "Bearer "+tok)))
		}
	}
	for s := range 20 {
		key, c, at := fmt.Sprintf("cut-%d", s), next(), float64(s*ones/20)
		exs = append(exs, rec(key, "GET", "/keep", at, at+0.5, onSession(c)),
			rec(key, "GET", "/cut", at+float64(ones/4), at+float64(ones/4)+0.5, onSession(c)))
	}
	for s := range 10 {
		at := float64(s * ones / 10)
		exs = append(exs, rec(fmt.Sprintf("bad-%d", s), "GET", "/fail", at, at+0.5, onSession(next())))
	}
	return writeRecording(t, "test:lengths", exs)
}

// writeRecording writes exs to a recording file of the test's and
// returns its path.
func writeRecording(t *testing.T, source string, exs []*session.Exchange) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rec.rpz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := session.NewWriter(f, session.Metadata{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range exs {
		if err := w.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// onSession puts the exchange on connection id, keeping its session.
func onSession(id uint64) func(*session.Exchange) {
	return func(ex *session.Exchange) { ex.Conn.ID = id }
}

// tokenServer issues a live token at /login and refuses /api without
// one it issued; /fail closes the connection unanswered.
func tokenServer(t *testing.T) *scripted {
	var mu sync.Mutex
	issued := make(map[string]bool)
	return newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/login":
			var b [16]byte
			rand.Read(b[:])
			tok := "tok-" + hex.EncodeToString(b[:])
			mu.Lock()
			issued[tok] = true
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"token":%q}`, tok)
		case strings.HasPrefix(r.URL.Path, "/api/"):
			mu.Lock()
			ok := issued[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			mu.Unlock()
			if !ok {
				w.WriteHeader(http.StatusUnauthorized)
			}
		case r.URL.Path == "/fail":
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		}
	})
}

// TestSessionLengthsRelease: with the survey's session lengths, a replay
// of many one-request sessions releases each when its request completes
// and holds few at once, where without them it holds every one for the
// idle limit; the report's counts are the same either way, the flows'
// live tokens are still substituted, and sessions that the run does not
// send every request of are held to the end.
func TestSessionLengthsRelease(t *testing.T) {
	const ones = 3000
	path := lengthsRecording(t, ones)
	for _, tc := range []struct {
		name  string
		keys  session.SessionKeys
		scale int
	}{
		{"recorded", session.KeysRecorded, 1},
		{"connection", session.KeysConnection, 1},
		{"recorded scale 2", session.KeysRecorded, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tokenServer(t)
			replayOnce := func(withLengths bool) (rep *Report, peak, atEnd int) {
				t.Helper()
				m, err := session.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				sv, err := SurveyRecording(context.Background(), m, CountSessionLengths(tc.keys))
				if err != nil {
					t.Fatal(err)
				}
				if want := ones + 30 + 20 + 10; sv.Sessions.Len() != want {
					t.Fatalf("survey counted %d sessions, want %d", sv.Sessions.Len(), want)
				}
				rd, err := session.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer rd.Close()
				var src session.Source = rd
				if tc.keys == session.KeysConnection {
					src = session.WithoutSessions(rd)
				}
				opts := []Option{WithPacer(Max{}), WithScale(tc.scale), WithCloneStagger(0), WithMaxInFlight(16),
					WithExcludePath("^/cut$"), WithMaxErrorRate(1), WithPlan(sv.Plan),
					func(o *options) error {
						o.sessionsHeld = func(p, e int) { peak, atEnd = p, e }
						return nil
					}}
				if withLengths {
					opts = append(opts, WithSessionLengths(sv.Sessions))
				}
				return run(t, srv.URL, src, opts...), peak, atEnd
			}
			held, heldPeak, heldEnd := replayOnce(false)
			rel, relPeak, relEnd := replayOnce(true)

			sessions := uint64(tc.scale * (ones + 30 + 20 + 10))
			want := SessionCounts{Total: sessions, Completed: sessions - uint64(tc.scale*10), Failed: uint64(tc.scale * 10)}
			for _, c := range []struct {
				name string
				rep  *Report
			}{{"held", held}, {"released", rel}} {
				if c.rep.Sessions != want {
					t.Errorf("%s: sessions %+v, want %+v", c.name, c.rep.Sessions, want)
				}
				if n := c.rep.StatusCodes["401"]; n != 0 {
					t.Errorf("%s: %d requests refused: a flow lost its live token", c.name, n)
				}
				if got, want := c.rep.Correlation.Substituted, uint64(tc.scale*30*4); got != want {
					t.Errorf("%s: %d values substituted, want %d", c.name, got, want)
				}
			}
			if held.Requests != rel.Requests || fmt.Sprint(held.StatusCodes) != fmt.Sprint(rel.StatusCodes) {
				t.Errorf("requests differ:\nheld     %+v %v\nreleased %+v %v", held.Requests, held.StatusCodes, rel.Requests, rel.StatusCodes)
			}
			if heldEnd != int(sessions) {
				t.Errorf("without lengths: %d sessions held at the end, want all %d", heldEnd, sessions)
			}
			// The cut sessions alone are held to the end (their /cut is
			// never sent); during the run, those in flight or waiting
			// (64 at most, see maxPending) and those done but not yet
			// looked at (see releaseEnded): a few hundred, not thousands.
			if relEnd != tc.scale*20 || relPeak > 400 {
				t.Errorf("with lengths: %d sessions held at the end (want %d), %d at most (want ≤ 400; %d without lengths)",
					relEnd, tc.scale*20, relPeak, heldPeak)
			}
			t.Logf("sessions held: without lengths peak %d end %d; with lengths peak %d end %d", heldPeak, heldEnd, relPeak, relEnd)
		})
	}
}

// TestSessionLengthsCollide: keys that hash alike share the sum of their
// counts, which neither reaches alone (held longer, never released
// early); past the cap, a new key goes uncounted; a count that
// overflowed is unknown; and a connection's key hashed in pieces is the
// hash of "conn:<id>".
func TestSessionLengthsCollide(t *testing.T) {
	b := newCountBuilder(false)
	b.n[maphash.String(b.seed, "a")] = 2
	b.add(&session.Exchange{Session: "a"})
	b.add(&session.Exchange{Conn: session.Conn{ID: 42}})
	b.add(&session.Exchange{Conn: session.Conn{ID: 42}})
	c := b.done()
	if n, ok := c.Requests("a"); !ok || n != 3 {
		t.Errorf(`"a": %d %v, want the sum 3`, n, ok)
	}
	if n, ok := c.Requests("conn:42"); !ok || n != 2 {
		t.Errorf(`"conn:42": %d %v, want 2`, n, ok)
	}
	if _, ok := c.Requests("b"); ok {
		t.Error(`"b" has a count, never seen`)
	}

	b = newCountBuilder(true)
	for i := range maxCountedSessions {
		b.n[uint64(i)] = 1 // full
	}
	b.add(&session.Exchange{Session: "late", Conn: session.Conn{ID: 7}})
	b.n[maphash.String(b.seed, "big")] = math.MaxUint32
	b.add(&session.Exchange{Conn: session.Conn{ID: 8}}) // not counted either
	c = b.done()
	if _, ok := c.Requests("conn:7"); ok {
		t.Error("a session past the cap has a count")
	}
	if _, ok := c.Requests("big"); ok {
		t.Error("an overflowed count is known")
	}
	b = newCountBuilder(false)
	for i := range 10000 {
		for range i%3 + 1 {
			b.add(&session.Exchange{Session: "s" + strconv.Itoa(i)})
		}
	}
	c = b.done()
	for i := range 10000 {
		if n, ok := c.Requests("s" + strconv.Itoa(i)); !ok || n != uint32(i%3+1) {
			t.Fatalf("s%d: %d %v, want %d", i, n, ok, i%3+1)
		}
		if _, ok := c.Requests("t" + strconv.Itoa(i)); ok {
			t.Fatalf("t%d has a count, never seen", i)
		}
	}
	var nilCounts *SessionLengths
	if _, ok := nilCounts.Requests("a"); ok || nilCounts.Len() != 0 {
		t.Error("nil counts know a session")
	}
}
