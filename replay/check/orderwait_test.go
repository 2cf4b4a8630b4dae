package check

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/session"
)

// orderRecording is a recording whose sessions exercise both edges of the
// order rule: each logs in (its response issues a token), asks /me with
// the token at a moment the recorded clock puts before the login's end
// (a proxy's stamps: only the data edge makes it wait), then /a, /b and
// /c after one another or side by side, and /d after both of the last.
func orderRecording(sessions int) []*session.Exchange {
	const token = "REC-TOKEN-%02d-0123456789"
	ms := func(v float64) int64 { return t0 + int64(v*float64(time.Millisecond)) }
	ex := func(sess, target string, start, end float64, mods ...func(*session.Exchange)) *session.Exchange {
		x := &session.Exchange{Session: sess,
			Request:  session.Request{Method: "GET", Target: target, Proto: "HTTP/1.1"},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200},
			Timing:   session.Timing{RequestStart: ms(start), RequestEnd: ms(start), ResponseStart: ms(end), ResponseEnd: ms(end)}}
		for _, m := range mods {
			m(x)
		}
		return x
	}
	var out []*session.Exchange
	for i := 0; i < sessions; i++ {
		s, tok := fmt.Sprintf("user%d", i), fmt.Sprintf(token, i)
		at := float64(i) * 200
		out = append(out,
			ex(s, "/login", at, at+10, func(x *session.Exchange) {
				x.Request.Method = "POST"
				x.Response.Header = session.Headers{{Name: "Content-Type", Value: "application/json"}}
				x.Response.Body = []byte(`{"access_token":"` + tok + `"}`)
			}),
			ex(s, "/me", at+9.99, at+20, func(x *session.Exchange) {
				x.Request.Header = session.Headers{{Name: "Authorization", Value: "Bearer " + tok}}
			}),
			ex(s, "/a", at+30, at+40),
			ex(s, "/b", at+50, at+60),
			ex(s, "/c", at+50, at+70),
			ex(s, "/d", at+80, at+90),
		)
	}
	// As a recording holds them: in the order they completed.
	slices.SortStableFunc(out, func(a, b *session.Exchange) int { return int(a.Timing.ResponseEnd - b.Timing.ResponseEnd) })
	return out
}

// The planner predicts the order waits the engine counts: the same
// recording and plan (--speed max against a target slower than the
// recording's gaps, so every request with an earlier one to wait for
// waits) give check's predicted OrderWaits and the report's OrderWait
// count alike. Both take the order rule from package replay/schedule;
// before, check's copy lacked the data edge and predicted one wait per
// session fewer than the engine ran.
func TestPredictedOrderWaitsAreTheEngines(t *testing.T) {
	const sessions = 5
	rec, err := Build(&shoptest.SliceSource{Exchanges: orderRecording(sessions)}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := CheckPlan(rec, Plan{Max: true}, DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	predicted := res.Plan.Predicted.OrderWaits
	if want := 5 * sessions; predicted != want { // /me, /a, /b, /c and /d of each session
		t.Errorf("check predicts %d order waits, want %d", predicted, want)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		if r.URL.Path == "/login" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"LIVE-TOKEN-0123456789"}`)
		}
	}))
	defer srv.Close()
	r, err := replay.New(srv.URL, replay.WithPacer(replay.Max{}))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), &shoptest.SliceSource{Exchanges: orderRecording(sessions)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests.Responses != 6*sessions {
		t.Fatalf("requests %+v", rep.Requests)
	}
	if got := int(rep.OrderWait.Count); got != predicted {
		t.Errorf("the engine counted %d order waits, check predicted %d", got, predicted)
	}
}

// A request of one session that followed another session's request on
// the same recorded HTTP/1 connection waits for that one's response when
// connections are replayed as recorded (the engine's line), unless it was
// pipelined behind it; pooled, it does not. The engine counts such a wait
// as an order wait, and so does check.
func TestPredictedConnectionWaits(t *testing.T) {
	ms := func(v float64) int64 { return t0 + int64(v*float64(time.Millisecond)) }
	ex := func(sess, target string, conn uint64, start, respStart, end float64) *session.Exchange {
		return &session.Exchange{Session: sess, Conn: session.Conn{ID: conn},
			Request:  session.Request{Method: "GET", Target: target, Proto: "HTTP/1.1"},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200},
			Timing:   session.Timing{RequestStart: ms(start), RequestEnd: ms(start), ResponseStart: ms(respStart), ResponseEnd: ms(end)}}
	}
	for _, c := range []struct {
		name        string
		next        *session.Exchange
		connections string
		want        int
	}{
		{"after on the connection", ex("b", "/next", 7, 150, 155, 160), replay.ConnectionsRecorded, 1},
		{"after on the connection, default mode", ex("b", "/next", 7, 150, 155, 160), "", 1},
		{"pooled", ex("b", "/next", 7, 150, 155, 160), replay.ConnectionsPooled, 0},
		{"pipelined behind it", ex("b", "/next", 7, 50, 100, 110), replay.ConnectionsRecorded, 0},
		{"another connection", ex("b", "/next", 8, 150, 155, 160), replay.ConnectionsRecorded, 0},
		{"HTTP/2 streams wait for no other", func() *session.Exchange {
			x := ex("b", "/next", 7, 150, 155, 160)
			x.Conn.Protocol = session.ProtoH2C
			return x
		}(), replay.ConnectionsRecorded, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			first := ex("a", "/slow", 7, 0, 95, 100)
			first.Conn.Protocol = c.next.Conn.Protocol
			rec, err := Build(&shoptest.SliceSource{Exchanges: []*session.Exchange{first, c.next}}, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// At 10x /next is due 15ms in; /slow's 100ms of service
			// never compresses.
			res, err := CheckPlan(rec, Plan{Speed: 10, Connections: c.connections}, DefaultThresholds())
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Plan.Predicted.OrderWaits; got != c.want {
				t.Errorf("predicted %d waits, want %d", got, c.want)
			}
		})
	}
	if _, err := CheckPlan(&Recording{}, Plan{Connections: "shared"}, DefaultThresholds()); err == nil {
		t.Error("connections \"shared\" accepted")
	}
}

// The engine waits as check predicts: the same two sessions on one
// recorded connection, replayed at 10x against a server as slow as the
// recorded one, count one order wait as recorded and none pooled.
func TestEngineConnectionWaitsAsPredicted(t *testing.T) {
	ms := func(v float64) int64 { return t0 + int64(v*float64(time.Millisecond)) }
	ex := func(sess, target string, start, end float64) *session.Exchange {
		return &session.Exchange{Session: sess, Conn: session.Conn{ID: 7},
			Request:  session.Request{Method: "GET", Target: target, Proto: "HTTP/1.1"},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200},
			Timing:   session.Timing{RequestStart: ms(start), RequestEnd: ms(start), ResponseStart: ms(end - 5), ResponseEnd: ms(end)}}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer srv.Close()
	for _, mode := range []string{replay.ConnectionsRecorded, replay.ConnectionsPooled} {
		recorded := []*session.Exchange{ex("a", "/slow", 0, 100), ex("b", "/next", 150, 160)}
		rec, err := Build(&shoptest.SliceSource{Exchanges: recorded}, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := CheckPlan(rec, Plan{Speed: 10, Connections: mode}, DefaultThresholds())
		if err != nil {
			t.Fatal(err)
		}
		r, err := replay.New(srv.URL, replay.WithPacer(replay.Speed(10)), replay.WithConnections(mode))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(context.Background(), &shoptest.SliceSource{Exchanges: recorded})
		if err != nil {
			t.Fatal(err)
		}
		want := res.Plan.Predicted.OrderWaits
		if mode == replay.ConnectionsRecorded && want != 1 {
			t.Errorf("recorded connections: check predicted %d order waits, want 1", want)
		}
		if got := int(rep.OrderWait.Count); got != want {
			t.Errorf("%s: the engine counted %d order waits, check predicted %d", mode, got, want)
		}
	}
}

// A request carrying a token another session's login issued waits for
// that login, as the engine's run table makes it (a browser's connections
// replayed as sessions of their own): check predicts the wait, and the
// engine counts it.
func TestPredictedCrossSessionWait(t *testing.T) {
	const token = "TOKEN-0123456789abcdef"
	ms := func(v float64) int64 { return t0 + int64(v*float64(time.Millisecond)) }
	login := &session.Exchange{Session: "conn-1", Conn: session.Conn{ID: 1},
		Request:  session.Request{Method: "POST", Target: "/login", Proto: "HTTP/1.1"},
		Response: session.Response{Proto: "HTTP/1.1", Status: 200, Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"access_token":"` + token + `"}`)},
		Timing:   session.Timing{RequestStart: ms(0), RequestEnd: ms(0), ResponseStart: ms(99), ResponseEnd: ms(100)}}
	call := &session.Exchange{Session: "conn-2", Conn: session.Conn{ID: 2},
		Request:  session.Request{Method: "GET", Target: "/api", Proto: "HTTP/1.1", Header: session.Headers{{Name: "Authorization", Value: "Bearer " + token}}},
		Response: session.Response{Proto: "HTTP/1.1", Status: 200},
		Timing:   session.Timing{RequestStart: ms(150), RequestEnd: ms(150), ResponseStart: ms(155), ResponseEnd: ms(160)}}
	recorded := []*session.Exchange{login, call}
	rec, err := Build(&shoptest.SliceSource{Exchanges: recorded}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := CheckPlan(rec, Plan{Speed: 10}, DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Plan.Predicted.OrderWaits; got != 1 {
		t.Errorf("check predicts %d order waits, want 1 (/api waits for the other session's login)", got)
	}
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			time.Sleep(100 * time.Millisecond)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"LIVE-TOKEN-fedcba9876543210"}`)
			return
		}
		got = r.Header.Get("Authorization")
	}))
	defer srv.Close()
	r, err := replay.New(srv.URL, replay.WithPacer(replay.Speed(10)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), &shoptest.SliceSource{Exchanges: recorded})
	if err != nil {
		t.Fatal(err)
	}
	if n := int(rep.OrderWait.Count); n != 1 || got != "Bearer LIVE-TOKEN-fedcba9876543210" {
		t.Errorf("the engine counted %d order waits (want 1) and /api carried %q (want the live token)", n, got)
	}
}
