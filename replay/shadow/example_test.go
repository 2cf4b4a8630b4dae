package shadow_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/reprise-tool/reprise/replay/shadow"
	"github.com/reprise-tool/reprise/session"
)

// A Mirror sends each exchange's request to the shadow and compares the
// answers; here the candidate answers one price differently.
func ExampleMirror() {
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":7,"price_cents":2000}`)
	}))
	defer candidate.Close()
	var src session.SliceSource // a proxy, a live capture or a recording would do
	for i := 0; i < 5; i++ {
		src.Exchanges = append(src.Exchanges, &session.Exchange{
			Conn:     session.Conn{ID: uint64(i)},
			Request:  session.Request{Method: "GET", Target: "/api/products/7", Proto: "HTTP/1.1"},
			Response: session.Response{Status: 200, Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"id":7,"price_cents":1999}`), BodySize: 27},
		})
	}
	m, err := shadow.New(shadow.Config{Shadow: candidate.URL, NoiseShare: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := m.Run(context.Background(), &src)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum.Stats.Sent, "sent;", sum.Compare.Reported())
	// Output:
	// 5 sent; [GET /api/products/{id} $.price_cents]
}
