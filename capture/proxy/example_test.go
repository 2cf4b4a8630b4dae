package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/reprise-tool/reprise/capture/proxy"
)

// A recording proxy in front of a service: clients talk to the proxy, the
// proxy forwards, and every exchange comes out of Next.
func ExampleProxy() {
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer service.Close()

	p, err := proxy.New(service.URL)
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/greeting")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("client got:", string(body))

	x, err := p.Next()
	if err != nil {
		panic(err)
	}
	fmt.Println("recorded:", x.Request.Method, x.Request.Target, x.Response.Status, string(x.Response.Body))

	stop()
	<-done
	// Output:
	// client got: hello
	// recorded: GET /greeting 200 hello
}
