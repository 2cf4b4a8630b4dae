package corrplan

import (
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// FuzzBuilder: any request and response, however malformed, is read
// without a panic, and the plan names only routes it saw.
func FuzzBuilder(f *testing.F) {
	f.Add("/login?x=1", "application/json", `{"user":"u"}`, "Bearer abcdefghijklmnopq", "application/json", `{"token":"abcdefghijklmnopq","items":[{"id":7}]}`, "sid=abcdefgh12345678")
	f.Add("/a/%zz/b?k=%", "application/x-www-form-urlencoded", "a=%&b==c&&", "Basic", "text/plain", "not json {", "=;;")
	f.Add("/", "", "[1,2", "", "application/json", `[[[[[]]]]]`, "")
	f.Fuzz(func(t *testing.T, target, reqType, reqBody, auth, respType, respBody, cookie string) {
		b := NewBuilder(0)
		for i := range 2 {
			b.Add(&session.Exchange{
				Session: "s",
				Request: session.Request{Method: "POST", Target: target, Body: []byte(reqBody), Header: session.Headers{
					{Name: "Content-Type", Value: reqType}, {Name: "Authorization", Value: auth}, {Name: "Cookie", Value: cookie}}},
				Response: session.Response{Status: 200, Body: []byte(respBody), Header: session.Headers{
					{Name: "Content-Type", Value: respType}, {Name: "Set-Cookie", Value: cookie}}},
				Timing: session.Timing{RequestStart: int64(i + 1)},
			})
		}
		route := session.Route("POST", target)
		for _, r := range b.Plan().Rules {
			if r.Route != route {
				t.Fatalf("rule for route %q, only %q was seen", r.Route, route)
			}
		}
	})
}
