package check_test

import (
	"fmt"
	"io"
	"time"

	"github.com/reprise-tool/reprise/replay/check"
	"github.com/reprise-tool/reprise/session"
)

// users makes a small recording: four users who log in for a 60 s token,
// call the API every second and refresh 5 s before expiry.
func users() session.Source {
	var xs []*session.Exchange
	const t0 = int64(1_700_000_000_000_000_000)
	for u := 0; u < 4; u++ {
		key := fmt.Sprintf("user-%d", u)
		for i := 0; i < 120; i++ {
			at := t0 + int64(u)*int64(time.Second)/4 + int64(i)*int64(time.Second)
			x := &session.Exchange{Session: key, Request: session.Request{Method: "GET", Target: "/api/cart"},
				Response: session.Response{Status: 200},
				Timing:   session.Timing{RequestStart: at, RequestEnd: at, ResponseEnd: at + int64(20*time.Millisecond)}}
			switch i {
			case 0:
				x.Request = session.Request{Method: "POST", Target: "/auth/login"}
				x.Tokens = []session.TokenEvent{{Kind: session.TokenLogin, Name: "access_token", ExpiresAt: x.Timing.ResponseEnd + int64(time.Minute)}}
			case 55:
				x.Request = session.Request{Method: "POST", Target: "/auth/refresh"}
				x.Tokens = []session.TokenEvent{{Kind: session.TokenRefresh, Name: "access_token", Proactive: true, ExpiresAt: x.Timing.ResponseEnd + int64(time.Minute)}}
			}
			xs = append(xs, x)
		}
	}
	return session.NewSliceSource(xs...)
}

// A plan at half speed replays the refreshes after the server's 60 s
// lifetimes have run out.
func ExampleCheckPlan() {
	rec, err := check.Build(users(), check.LoadOptions{})
	if err != nil {
		panic(err)
	}
	res, err := check.CheckPlan(rec, check.Plan{Speed: 0.5}, check.DefaultThresholds())
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Verdict)
	for _, f := range res.Findings {
		fmt.Println(f.Check)
	}
	// Output:
	// fail
	// expired_tokens
}

// A run whose filters left out the four logins: the mix barely moved
// (distance under 0.01), but 1% of the requests were not replayed, a
// warning.
func ExampleCheckRun() {
	rec, err := check.Build(users(), check.LoadOptions{})
	if err != nil {
		panic(err)
	}
	run := &check.RunData{Speed: "1", Scale: 1, Sent: 472, Responses: 472,
		Routes: map[string]float64{"GET /api/cart": 468, "POST /auth/refresh": 4}}
	run.Filtered.ByPath = 4
	res, err := check.CheckRun(rec, run, check.DefaultThresholds())
	if err != nil {
		panic(err)
	}
	res.WriteText(io.Discard)
	fmt.Println(res.Verdict, res.Findings[0].Check, *res.Run.RouteDistance < 0.01)
	// Output:
	// warn requests true
}
