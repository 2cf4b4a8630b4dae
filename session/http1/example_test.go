package http1_test

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/reprise-tool/reprise/session/http1"
)

// Reading a response as the replay client does: the head in place, the
// framing decided by the fields, the chunked body with its sizes.
func Example() {
	r := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"))
	var h http1.HeadReader
	var s http1.StatusHead
	if err := h.ReadResponse(r, &s); err != nil {
		panic(err)
	}
	b, err := s.ResponseBody("GET", s.Status)
	fmt.Println(s.Status, b.Kind == http1.ChunkedBody, err, s.Flags&http1.FlagLengthAndEncoding != 0)

	var sizes []int64
	c := http1.NewChunkedReader(r)
	c.OnChunk = func(n int64) { sizes = append(sizes, n) }
	body, err := io.ReadAll(c)
	fmt.Printf("%q %v chunks %v\n", body, err, sizes)
	// Output:
	// 200 true <nil> true
	// "hello world" <nil> chunks [5 6 0]
}
