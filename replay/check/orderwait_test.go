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
