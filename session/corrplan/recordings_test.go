package corrplan

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// Recordings made up for the Builder's benchmark and for comparing its
// plan with the reference reading's: the shapes of the recordings the
// nginx and h2load benches make (a JSON body with a per-response id over
// 64 keep-alive connections, a 3.4 KB static JSON file, one-stream HTTP/2
// sessions, a login/token flow), and a varied one that touches every
// place values are read from, malformed input included.

// nginxHeaders are the response fields Debian's nginx writes.
func nginxHeaders(ctype string, n int, extra ...session.Header) session.Headers {
	h := session.Headers{
		{Name: "Server", Value: "nginx/1.22.1"}, {Name: "Date", Value: "Mon, 07 Dec 2026 05:06:31 GMT"},
		{Name: "Content-Type", Value: ctype}, {Name: "Content-Length", Value: fmt.Sprint(n)},
		{Name: "Connection", Value: "keep-alive"},
	}
	return append(h, extra...)
}

func hex32(r *rand.Rand) string { return fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()) }

// staticCatalogue is the nginx bench's 3.4 KB static JSON file.
var staticCatalogue = func() string {
	var sb strings.Builder
	sb.WriteString(`{"items":[`)
	for i := range 38 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"sku":"SKU-%05d","name":"catalogue item %d","price":%d.99}`, i, i, 10+i)
	}
	sb.WriteString(`],"total":38,"page":1}`)
	return sb.String()
}()

// madeUp returns n exchanges of the named shape, the same for a seed.
func madeUp(kind string, n int, seed uint64) []*session.Exchange {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]*session.Exchange, 0, n)
	t := int64(1_700_000_000_000_000_000)
	for i := range n {
		t += int64(r.IntN(200_000))
		x := &session.Exchange{Timing: session.Timing{RequestStart: t, ResponseEnd: t + 500_000}}
		x.Conn.ID = uint64(1 + i%64)
		x.Response.Status = 200
		switch kind {
		case "json":
			body := `{"ok":true,"id":"` + hex32(r) + `"}`
			x.Request = session.Request{Method: "GET", Target: "/json", Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "Host", Value: "127.0.0.1:39095"}}}
			x.Response.Header = nginxHeaders("application/json", len(body))
			x.Response.Body = []byte(body)
		case "static":
			x.Request = session.Request{Method: "GET", Target: "/static.json", Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "Host", Value: "127.0.0.1:38535"}}}
			x.Response.Header = nginxHeaders("application/json", len(staticCatalogue),
				session.Header{Name: "Last-Modified", Value: "Mon, 07 Dec 2026 05:05:28 GMT"},
				session.Header{Name: "ETag", Value: `"6b163e98-d59"`}, session.Header{Name: "Accept-Ranges", Value: "bytes"})
			x.Response.Body = []byte(staticCatalogue)
		case "h2c":
			x.Conn.ID = uint64(1 + i%8)
			x.Session = fmt.Sprintf("c%d-%d", i%8, i/8)
			x.Request = session.Request{Method: "GET", Target: "/", Proto: "HTTP/2.0", Header: session.Headers{
				{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "shop.test"},
				{Name: ":path", Value: "/"}, {Name: "host", Value: "shop.example"}, {Name: "user-agent", Value: "recorded/1.0"}}}
			x.Response.Header = session.Headers{{Name: "content-type", Value: "application/json"}}
			x.Response.Body = []byte(`{"ok":true,"id":"` + hex32(r) + `"}`)
		case "flow":
			// Each session logs in, then calls the API with its token.
			x.Session = fmt.Sprintf("s-%06d", i/4)
			tok := fmt.Sprintf("rdct_%016x", uint64(i/4)*0x9e3779b97f4a7c15)
			if i%4 == 0 {
				body := `{"token":"` + tok + `"}`
				x.Request = session.Request{Method: "POST", Target: "/login", Proto: "HTTP/1.1", Body: []byte(`{"user":"bench"}`),
					Header: session.Headers{{Name: "Host", Value: "127.0.0.1:41743"}, {Name: "Content-Length", Value: "16"},
						{Name: "Content-Type", Value: "application/json"}}}
				x.Response.Header = nginxHeaders("application/json", len(body))
				x.Response.Body = []byte(body)
			} else {
				body := `{"ok":true,"id":"` + hex32(r) + `"}`
				x.Request = session.Request{Method: "GET", Target: "/api", Proto: "HTTP/1.1",
					Header: session.Headers{{Name: "Host", Value: "127.0.0.1:41743"}, {Name: "Authorization", Value: "Bearer " + tok}}}
				x.Response.Header = nginxHeaders("application/json", len(body))
				x.Response.Body = []byte(body)
			}
		case "mixed":
			// The static file (under two routes), ids, and requests
			// carrying a SKU or an id back, over four connections: the
			// file's values are issued again and again, now and then
			// let go of by the bounds.
			x.Conn.ID = uint64(1 + i%4)
			switch i % 3 {
			case 0:
				x.Request = session.Request{Method: "GET", Target: []string{"/static.json", "/catalogue"}[r.IntN(2)]}
				x.Response.Header = nginxHeaders("application/json", len(staticCatalogue))
				x.Response.Body = []byte(staticCatalogue)
			case 1:
				x.Request = session.Request{Method: "GET", Target: "/json"}
				x.Response.Header = nginxHeaders("application/json", 51)
				x.Response.Body = []byte(`{"ok":true,"id":"` + hex32(r) + `"}`)
			case 2:
				x.Request = session.Request{Method: "GET", Target: fmt.Sprintf("/items/SKU-%05d", r.IntN(45))}
			}
		case "varied":
			varied(r, i, x)
		default:
			panic(kind)
		}
		out = append(out, x)
	}
	return out
}

// variedBodies are response bodies of every kind the plan reads, the
// malformed and the odd among them: escapes, invalid UTF-8, duplicate
// keys, keys holding '.' or '[', numbers that are and are not ids, deep
// nesting, text after the value, a form, plain text.
var variedBodies = []struct{ ctype, body string }{
	{"application/json", `{"ok":true,"id":"%s"}`},
	{"application/json", `{"data":{"items":[{"id":7,"sku":"%s"},{"id":"x","tags":["a","%s-t"]}]},"n":1e-10}`},
	{"application/json; charset=utf-8", `{"user":{"userId":12,"session":"%s","name":"A B C D E F G"}}`},
	{"application/json", `{"token":"%s","token":"short"}`},
	{"application/json", `{"a":{"b":"%s"},"a":{"c":"zzzzzzzzzz"}}`},
	{"application/json", `{"a.b":"%s","a":{"b":"yyyyyyyyyyyy"}}`},
	{"application/json", `{"k[0]":"%s","k":["wwwwwwwwwwwwww"]}`},
	{"application/json", `{"esc\u0061ped":"%s","escaped":"vvvvvvvvvvvvv"}`},
	{"application/json", `{"s":"\u00e9\"%s\\\/","bad":"\xff\xfe%s"}`},
	{"application/json", "{\"\xffk\":\"%s\",\"\xfek\":\"uuuuuuuuuuuu\"}"},
	{"application/json", `[["%s"],[["%s-2"]],{"order_id":-1.5E+3,"ids":[1,2,3]}]`},
	{"application/json", `"%s"`},
	{"application/json", `1234567890123`},
	{"application/json", `{"a":"%s"} trailing garbage`},
	{"application/json", `{"a":"%s",}`},
	{"application/json", `{"a":"%s"`},
	{"", ` {"guessed":"%s"}`},
	{"text/plain", `{"looks":"%s"}`},
	{"text/html", `<p>%s</p>`},
	{"application/x-www-form-urlencoded", `access_token=%s&expires_in=3600&x=%%zz`},
	{"application/x-www-form-urlencoded", `refresh_token=%s&scope=a+b`},
	{"application/problem+json", `{"traceId":"%s","detail":"something went wrong here"}`},
	{"application/json", `{"Id":"%s","ID":"%s-2","xId":"%s-3","x_ids":["%s-4"],"İD":"%s-5","uuid":5}`},
	{"application/json", `{"a":{"a":{"a":{"a":{"a":{"a":[[[[{"id":"%s"}]]]]}}}}}}`},
	{"application/json", `{"p":"%s","q":"p","r":"with space %s","s":"", "t":null,"u":false,"v":[]}`},
	{"application/json", manyKeys(20, "") + `,"z":"%s"}`},
	{"application/json", manyKeys(40, `"k7":"ttttttttttttt",`) + `,"z":"%s"}`},
}

// manyKeys is an object of n keys (left open), after extra.
func manyKeys(n int, extra string) string {
	var sb strings.Builder
	sb.WriteString("{" + extra)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"k%d":"value-%08d"`, i, i)
	}
	return sb.String()
}

// varied makes exchange i of the varied recording: a response issuing
// values of one of the shapes above, and a request carrying some issued
// earlier (in its path, query, cookie, Authorization, other headers,
// JSON and form bodies, text) and some issued by nobody.
func varied(r *rand.Rand, i int, x *session.Exchange) {
	x.Session = fmt.Sprintf("v%d", r.IntN(4))
	if r.IntN(10) == 0 {
		x.Session = "" // keyed by its connection
	}
	val := func(i int) string {
		// The value issued at exchange i, some with separators.
		switch i % 5 {
		case 0:
			return fmt.Sprintf("tok-%08x%04d", uint32(i)*2654435761, i)
		case 1:
			return fmt.Sprintf("%d", 100000+i)
		case 2:
			return fmt.Sprintf("ord_%x", i*7919)
		case 3:
			return fmt.Sprintf("%08x-%04x-4abc-8def-%012x", i, i%65536, i*31)
		}
		return fmt.Sprintf("s%07d", i)
	}
	v := val(i)
	back := val(max(0, i-1-r.IntN(30))) // a value issued a little earlier
	vb := variedBodies[r.IntN(len(variedBodies))]
	body := strings.ReplaceAll(vb.body, "%s", v)
	body = strings.ReplaceAll(body, "%%", "%")
	x.Response.Header = session.Headers{{Name: "Content-Type", Value: vb.ctype}, {Name: "Date", Value: "x"}}
	if vb.ctype == "" {
		x.Response.Header = nil
	}
	switch r.IntN(8) {
	case 0:
		x.Response.Header = append(x.Response.Header, session.Header{Name: "Set-Cookie", Value: "sid=" + v + "; Path=/; HttpOnly"})
	case 1:
		x.Response.Header = append(x.Response.Header, session.Header{Name: "x-request-id", Value: v},
			session.Header{Name: "X-Request-ID", Value: "dup-" + v})
	case 2:
		x.Response.Header = append(x.Response.Header, session.Header{Name: "Location", Value: "/orders/" + v})
	case 3:
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		io.WriteString(zw, body)
		zw.Close()
		body = zb.String()
		x.Response.Header = append(x.Response.Header, session.Header{Name: "Content-Encoding", Value: "gzip"})
	case 4:
		x.Response.Header = append(x.Response.Header, session.Header{Name: ":status", Value: "200"},
			session.Header{Name: "etag", Value: `"` + v + `"`})
	}
	if r.IntN(4) == 0 && len(body) > 0 {
		body += strings.Repeat(" ", bodyCacheFrom) // some bodies the cache reads once
	}
	x.Response.Body = []byte(body)
	if r.IntN(20) == 0 {
		x.Flags |= session.FlagNoResponse
	}
	methods := []string{"GET", "POST", "PUT"}
	x.Request.Method = methods[r.IntN(len(methods))]
	switch r.IntN(6) {
	case 0:
		x.Request.Target = "/orders/" + back + "/items?page=2&api_key=k3y-fixed-123"
	case 1:
		x.Request.Target = "/a%zz/b%2Fc/" + back + "?" + "x=%zz&ref=" + back + "&=e&flag"
	case 2:
		x.Request.Target = "/search?q=" + back + "+more&session_token=stale-0000000000"
	default:
		x.Request.Target = fmt.Sprintf("/p/%d", r.IntN(5))
	}
	h := session.Headers{{Name: "Host", Value: "shop.test"}}
	switch r.IntN(8) {
	case 0:
		h = append(h, session.Header{Name: "Cookie", Value: `sid="` + back + `"; theme=dark; csrf=stale-csrf-0001`})
	case 1:
		h = append(h, session.Header{Name: "authorization", Value: "Bearer " + back})
	case 2:
		h = append(h, session.Header{Name: "X-Api-Key", Value: "fixed-api-key-0001"}, session.Header{Name: "X-Order-Id", Value: back})
	case 3:
		h = append(h, session.Header{Name: "x-trace", Value: "a=" + back + ";b=0123456789abcdef0123"})
	case 4:
		h = append(h, session.Header{Name: ":authority", Value: "shop.test"}, session.Header{Name: ":path", Value: x.Request.Target},
			session.Header{Name: "proxy-authorization", Value: "Basic"})
	case 5:
		h = append(h, session.Header{Name: "Authorization", Value: "Token stale-token-from-elsewhere"})
	case 6:
		h = append(h, session.Header{Name: "X-Sessİon-Id", Value: "stale-0123456789"}, session.Header{Name: "x-request-id", Value: "id1"})
	}
	switch r.IntN(7) {
	case 0:
		h = append(h, session.Header{Name: "Content-Type", Value: "application/json"})
		x.Request.Body = []byte(`{"order":{"id":"` + back + `","lines":[{"sku":"` + back + `"},{"n":12}]},"api_token":"stale-0123456789"}`)
	case 1:
		h = append(h, session.Header{Name: "Content-Type", Value: "application/x-www-form-urlencoded"})
		x.Request.Body = []byte("refresh_token=" + back + "&grant_type=refresh&bad=%zz&=x")
	case 2:
		x.Request.Body = []byte(`{"guessed_id":"` + back + `","id":"` + back + `","id":"dup-0000000000"}`)
	case 3:
		h = append(h, session.Header{Name: "Content-Type", Value: "text/plain"})
		x.Request.Body = []byte("note: " + back + ", then tok-0000000000000000ffff")
	case 4:
		h = append(h, session.Header{Name: "Content-Type", Value: "application/json"})
		x.Request.Body = []byte(`{"broken":"` + back + `"`)
	case 5:
		h = append(h, session.Header{Name: "Content-Type", Value: "application/json"})
		x.Request.Body = []byte(`[{"esc\u0061ped":"` + back + `"},"\u0074ok-` + back + `",1.5e-7,-0]`)
	}
	x.Request.Header = h
}

// recordingFiles reads up to n exchanges of each recording named in
// $REPRISE_PLAN_RECORDINGS (comma-separated paths), for running the
// benchmark and the comparison over real traffic.
func recordingFiles(tb testing.TB, n int) map[string][]*session.Exchange {
	out := map[string][]*session.Exchange{}
	for _, path := range strings.Split(os.Getenv("REPRISE_PLAN_RECORDINGS"), ",") {
		if path != "" {
			out[path] = recordingFile(tb, path, n)
		}
	}
	return out
}

// recordingFile reads up to n exchanges of the recording at path.
func recordingFile(tb testing.TB, path string, n int) []*session.Exchange {
	rd, err := session.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer rd.Close()
	var exs []*session.Exchange
	for len(exs) < n {
		ex, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		exs = append(exs, ex)
	}
	return exs
}
