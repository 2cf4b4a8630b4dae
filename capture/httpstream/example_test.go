package httpstream_test

import (
	"fmt"
	"net/netip"

	"github.com/reprise-tool/reprise/capture/httpstream"
	"github.com/reprise-tool/reprise/session"
)

type printer struct{}

func (printer) RequestStarted(*session.Exchange) {}
func (printer) Exchange(x *session.Exchange) {
	fmt.Printf("%s %s -> %d %q\n", x.Request.Method, x.Request.Target, x.Response.Status, x.Response.Body)
}
func (printer) Dropped(*session.Exchange) {}
func (printer) Unsupported(kind string)   { fmt.Println("unsupported:", kind) }
func (printer) Orphan()                   {}

// Feeding a connection by hand: two pipelined requests, their responses in
// pieces, one of them chunked.
func Example() {
	c := httpstream.New(httpstream.Config{
		ID:      1,
		Addr:    [2]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50000"), netip.MustParseAddrPort("127.0.0.1:8080")},
		Client:  httpstream.Side0,
		MaxBody: 1 << 20,
	}, printer{})
	c.Feed(httpstream.Side0, []byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"), 1)
	c.Feed(httpstream.Side1, []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n"), 2)
	c.Feed(httpstream.Side1, []byte("Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"), 3)
	c.Close()
	// Output:
	// GET /a -> 200 "abc"
	// GET /b -> 200 "hi"
}
