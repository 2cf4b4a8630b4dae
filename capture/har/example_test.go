package har_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/reprise-tool/reprise/capture/har"
)

// Reading the entries of a browser's HAR for one host.
func ExampleNewReader() {
	file := `{"log":{"version":"1.2","entries":[
	 {"startedDateTime":"2024-05-01T10:00:00.000Z","time":12,
	  "request":{"method":"GET","url":"https://shop.test/api/items?page=2","httpVersion":"HTTP/1.1",
	             "headers":[{"name":"Host","value":"shop.test"}]},
	  "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[],
	              "content":{"size":2,"mimeType":"application/json","text":"[]"}},
	  "timings":{"send":1,"wait":10,"receive":1}},
	 {"startedDateTime":"2024-05-01T10:00:00.500Z","time":30,
	  "request":{"method":"GET","url":"https://cdn.test/app.js","httpVersion":"HTTP/1.1","headers":[]},
	  "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[],"content":{"size":0,"mimeType":"text/javascript"}},
	  "timings":{"send":1,"wait":28,"receive":1}}]}}`
	r, err := har.NewReader(strings.NewReader(file), har.Host("shop.test"))
	if err != nil {
		panic(err)
	}
	for {
		x, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("damaged:", err) // a *har.EntryError; reading goes on
			continue
		}
		fmt.Println(x.Request.Method, x.Request.Target, x.Response.Status, string(x.Response.Body), x.Timing.Latency())
	}
	fmt.Println(r.Stats().Hosts)
	// Output:
	// GET /api/items?page=2 200 [] 11ms
	// map[cdn.test:1 shop.test:1]
}
