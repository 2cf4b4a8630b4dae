package gor_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/reprise-tool/reprise/capture/gor"
	"github.com/reprise-tool/reprise/session"
)

// Reading a GoReplay file: a request and its original response, paired by
// their ID.
func ExampleNewReader() {
	file := "1 a1 1700000000000000000 500000\nGET /items HTTP/1.1\r\nHost: shop\r\n\r\n" + gor.Separator +
		"2 a1 1700000000002000000 1000000\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + gor.Separator
	r, err := gor.NewReader(strings.NewReader(file))
	if err != nil {
		panic(err)
	}
	for {
		x, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("damaged:", err) // a *gor.PayloadError; reading goes on
			continue
		}
		fmt.Println(x.Request.Method, x.Request.Target, x.Response.Status, string(x.Response.Body), x.Timing.Latency())
	}
	// Output:
	// GET /items 200 ok 2.5ms
}

// Writing exchanges for GoReplay's --input-file.
func ExampleNewWriter() {
	var b bytes.Buffer
	w := gor.NewWriter(&b)
	w.WriteExchange(&session.Exchange{
		Request: session.Request{Method: "GET", Target: "/", Proto: "HTTP/1.1", Header: session.Headers{{Name: "Host", Value: "shop"}}},
		Flags:   session.FlagNoResponse,
		Timing:  session.Timing{RequestStart: 1700000000000000000, RequestEnd: 1700000000000000500},
	})
	w.Close()
	fmt.Printf("%q\n", b.String())
	// Output:
	// "1 000000000000000000000001 1700000000000000000 500\nGET / HTTP/1.1\r\nHost: shop\r\n\r\n\n🐵🙈🙉\n"
}
