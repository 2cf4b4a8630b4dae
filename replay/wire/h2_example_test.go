package wire_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
)

// Replaying a recorded HTTP/2 connection: its streams go on one H2Line,
// concurrently; the recorded pseudo-header fields give their order and
// the live values fill them, and hop-by-hop fields stay behind.
func ExampleH2Line() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s keep-alive=%q", r.Proto, r.Method, r.URL.Path, r.Header.Get("Keep-Alive"))
	}), &http2.Server{})}
	go srv.Serve(ln)
	defer srv.Close()

	c := wire.NewH2(wire.Config{Addr: ln.Addr().String(), ConnectTimeout: time.Second, Timeout: 5 * time.Second, BodyLimit: 1 << 10})
	defer c.CloseAll()
	line := c.NewLine()
	resp, _, err := line.Do(context.Background(), &wire.H2Request{Request: &wire.Request{Method: "GET", Target: "/orders/7", Host: "shop",
		Header: session.Headers{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/orders/1"}, {Name: "Keep-Alive", Value: "5"}}}})
	fmt.Printf("%d %s %v\n", resp.Status, resp.Body, err)
	fmt.Println(c.Stats().Opened, "connection")
	// Output:
	// 200 HTTP/2.0 GET /orders/7 keep-alive="" <nil>
	// 1 connection
}
