package wire_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
)

// Sending a recorded request as it was recorded: the field names keep
// their case, hop-by-hop fields stay behind, and a refused connection is
// an error of kind "connect".
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s trace=%s connection=%s", r.Method, r.URL.Path, r.Header.Get("x-trace"), r.Header.Get("Connection"))
	}))
	defer srv.Close()

	c := wire.New(wire.Config{Addr: strings.TrimPrefix(srv.URL, "http://"), ConnectTimeout: time.Second,
		Timeout: 5 * time.Second, MaxIdle: 4, BodyLimit: 1 << 20})
	defer c.CloseAll()
	resp, _, err := c.Do(context.Background(), &wire.Request{Method: "GET", Target: "/orders", Host: "shop",
		Header: session.Headers{{Name: "x-trace", Value: "abc"}, {Name: "Connection", Value: "close"}}})
	fmt.Printf("%d %q %v\n", resp.Status, resp.Body, err)

	srv.Close()
	dead := wire.New(wire.Config{Addr: strings.TrimPrefix(srv.URL, "http://"), ConnectTimeout: time.Second, Timeout: time.Second})
	_, _, err = dead.Do(context.Background(), &wire.Request{Method: "GET", Target: "/", Host: "shop"})
	fmt.Println(wire.Kind(err))
	// Output:
	// 200 "GET /orders trace=abc connection=" <nil>
	// connect
}
