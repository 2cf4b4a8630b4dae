package replay

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// TestSurveyPlanHTTP2Fields: the plan a survey computes for an HTTP/2
// recording reports no pseudo-header field as unreplaced (:authority is
// the target's host, which the replay writes itself, as it does Host),
// and is the plan of the same traffic recorded over HTTP/1: a login's
// token carried back is learned, an API key from outside the recording is
// unreplaced, the host is neither.
func TestSurveyPlanHTTP2Fields(t *testing.T) {
	plans := map[string]*session.CorrelationPlan{}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		var exs []*session.Exchange
		for s := range 40 {
			tok := fmt.Sprintf("tok-%032x", s)
			for i, target := range []string{"/login", "/orders?page=2", "/me"} {
				method := "GET"
				if i == 0 {
					method = "POST"
				}
				at := float64(s*3 + i)
				opts := []func(*session.Exchange){withResponse(200, "application/json", fmt.Sprintf(`{"token":%q}`, tok))}
				if i > 0 {
					opts = []func(*session.Exchange){withHeader("Authorization", "Bearer "+tok), withHeader("X-Api-Key", "fixed-api-key-000111")}
				}
				ex := rec(fmt.Sprintf("s%d", s), method, target, at, at+0.5, opts...)
				ex.Request.Proto = proto
				ex.Session = fmt.Sprintf("c%d-%d", s, i) // a session per stream, as the h2c bench's recording has
				if proto == "HTTP/2.0" {
					ex.Request.Header = append(session.Headers{
						{Name: ":method", Value: method}, {Name: ":scheme", Value: "https"},
						{Name: ":authority", Value: "shop.example.test:8443"}, {Name: ":path", Value: target},
					}, lower(ex.Request.Header)...)
				} else {
					ex.Request.Header = append(session.Headers{{Name: "Host", Value: "shop.example.test:8443"}}, ex.Request.Header...)
				}
				exs = append(exs, ex)
			}
		}
		sv, err := SurveyRecording(context.Background(), openWritten(t, exs))
		if err != nil {
			t.Fatal(err)
		}
		if !sv.PlanComputed {
			t.Fatal("the plan was not computed")
		}
		plans[proto] = sv.Plan
		for _, u := range sv.Plan.Unreplaced {
			if strings.HasPrefix(u.Place, "header::") || strings.EqualFold(u.Place, "header:Host") {
				t.Errorf("%s: %s at %s reported unreplaced (%d requests)", proto, u.Route, u.Place, u.Requests)
			}
		}
	}
	h1, h2 := plans["HTTP/1.1"], plans["HTTP/2.0"]
	if len(h1.Rules) != 1 || h1.Rules[0].Field != "json:.token" || len(h1.Unreplaced) != 2 {
		t.Errorf("HTTP/1 plan: rules %v, unreplaced %v", h1.Rules, h1.Unreplaced)
	}
	if !reflect.DeepEqual(h1.Rules, h2.Rules) || !reflect.DeepEqual(h1.Unreplaced, h2.Unreplaced) {
		t.Errorf("HTTP/2 plan %+v, HTTP/1's %+v", h2, h1)
	}
}

// lower writes header names as HTTP/2 sends them.
func lower(h session.Headers) session.Headers {
	out := make(session.Headers, len(h))
	for i, f := range h {
		out[i] = session.Header{Name: strings.ToLower(f.Name), Value: f.Value}
	}
	return out
}

// openWritten writes exs to a recording file and opens it, so that the
// survey reads it as a replay does (decoded into reused exchanges).
func openWritten(t *testing.T, exs []*session.Exchange) session.Source {
	t.Helper()
	m, err := session.Open(writeRecording(t, "test:plan", exs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
