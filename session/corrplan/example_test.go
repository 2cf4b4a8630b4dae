package corrplan_test

import (
	"fmt"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/corrplan"
)

// A login's token, carried back by the next request, is the one value
// the plan says to learn; the listing's id nobody sends back is not, and
// the API key no response issued is unreplaced.
func ExampleBuilder() {
	json := session.Headers{{Name: "Content-Type", Value: "application/json"}}
	exchanges := []*session.Exchange{
		{Session: "a", Request: session.Request{Method: "POST", Target: "/login"},
			Response: session.Response{Status: 200, Header: json, Body: []byte(`{"token":"tok-7f3a9c2e41d8"}`)}},
		{Session: "a", Request: session.Request{Method: "GET", Target: "/items?api_key=k-000111222",
			Header: session.Headers{{Name: "Authorization", Value: "Bearer tok-7f3a9c2e41d8"}}},
			Response: session.Response{Status: 200, Header: json, Body: []byte(`{"id":"req-5b1c0e9d77aa"}`)}},
	}
	b := corrplan.NewBuilder(0)
	for _, ex := range exchanges {
		b.Add(ex)
	}
	p := b.Plan()
	for _, r := range p.Rules {
		fmt.Println("learn", r.Route, r.Field)
	}
	for _, u := range p.Unreplaced {
		fmt.Println("unreplaced", u.Route, u.Place, u.Requests, u.Example)
	}
	// Output:
	// learn POST /login json:.token
	// unreplaced GET /items query:api_key 1 k-0…(11 chars)
}
