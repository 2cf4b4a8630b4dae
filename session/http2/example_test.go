package http2_test

import (
	"fmt"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
)

// printer receives the streams an Assembler finds.
type printer struct{}

func (printer) Started(*session.Exchange) {}
func (printer) Exchange(x *session.Exchange) {
	fmt.Println(x.Stream.ID, x.Request.Method, x.Request.Target, x.Response.Status)
}
func (printer) Dropped(*session.Exchange) {}
func (printer) Undecodable(reason string) { fmt.Println("undecodable:", reason) }

// Feed an Assembler the bytes each side of a connection sent, then close
// it: here a connection joined after its HPACK tables were in use, whose
// only stream refers to an entry the capture never saw.
func Example() {
	a := http2.New(http2.Config{Conn: session.Conn{ID: 1, Protocol: session.ProtoH2C}, MaxBody: 1 << 20}, printer{})
	// A HEADERS frame on stream 5 whose block is one indexed field, 62:
	// the newest dynamic table entry, added before the capture began.
	a.Feed(http2.FromClient, []byte{0, 0, 1, 1, 5, 0, 0, 0, 5, 0x80 | 62}, 1)
	a.Close()
	fmt.Printf("%+v\n", a.Stats())
	// Output:
	// undecodable: hpack-table-unknown
	// {Streams:1 MaxConcurrent:1 Pushes:0 GoAways:0 Resets:0 Undecodable:1 BadFrames:0}
}

// A recorded HTTP/2 request in the form an HTTP/1.1 sender writes it.
func ExampleAsHTTP1() {
	req := &session.Request{Method: "GET", Target: "/cart", Proto: "HTTP/2.0", Header: session.Headers{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: "shop.example"},
		{Name: ":path", Value: "/cart"}, {Name: "cookie", Value: "sid=1"}, {Name: "cookie", Value: "theme=dark"},
	}}
	h1 := http2.AsHTTP1(req)
	fmt.Println(h1.Method, h1.Target, h1.Proto)
	for _, h := range h1.Header {
		fmt.Printf("%s: %s\n", h.Name, h.Value)
	}
	// Output:
	// GET /cart HTTP/1.1
	// host: shop.example
	// cookie: sid=1; theme=dark
}
