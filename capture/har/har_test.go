package har

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
	"github.com/reprise-tool/reprise/session"
)

const t0 = int64(1_700_000_000_123_456_789)

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// sample returns exchanges covering what a round trip must keep.
func sample() []*session.Exchange {
	srv := netip.MustParseAddrPort("10.0.0.2:8080")
	return []*session.Exchange{
		{
			Conn: session.Conn{ID: 7, Server: srv},
			Request: session.Request{Method: "POST", Target: "/api/items?page=2&q=a%20b", Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "host", Value: "shop.test:8080"}, {Name: "X-Trace", Value: "a"}, {Name: "x-trace", Value: "b"}, {Name: "Cookie", Value: "sid=1; theme=dark"}},
				Body:   []byte("a=1&b=2"), BodySize: 7},
			Response: session.Response{Proto: "HTTP/1.1", Status: 201, Reason: "Created",
				Header: session.Headers{{Name: "Content-Type", Value: "application/json"}, {Name: "Set-Cookie", Value: "sid=2; Path=/; HttpOnly"}},
				Body:   []byte(`{"id":1,"html":"<b>&</b>"}`), BodySize: 26},
			Timing: session.Timing{RequestStart: t0, RequestEnd: t0 + 1000, ResponseStart: t0 + 5000, ResponseEnd: t0 + 7001},
		},
		{
			Conn: session.Conn{ID: 7, Server: srv},
			Request: session.Request{Method: "GET", Target: "/img.png", Proto: "HTTP/1.0",
				Header: session.Headers{{Name: "Host", Value: "shop.test"}}},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200, Reason: "OK",
				Header: session.Headers{{Name: "Content-Length", Value: "4"}}, Body: []byte{0, 0xff, '\n', 1}, BodySize: 4},
			Timing: session.Timing{RequestStart: t0 + 10_000_000, RequestEnd: t0 + 10_000_000, ResponseStart: t0 + 20_000_000, ResponseEnd: t0 + 20_000_000},
		},
		{
			Request: session.Request{Method: "GET", Target: "/page", Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "Host", Value: "shop.test"}, {Name: "Accept-Encoding", Value: "gzip"}}},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200, Reason: "OK",
				Header: session.Headers{{Name: "Content-Encoding", Value: "gzip"}, {Name: "Content-Type", Value: "text/html"}},
				Body:   gz("<html>hello</html>"), BodySize: int64(len(gz("<html>hello</html>")))},
			Timing: session.Timing{RequestStart: t0 + 30_000_000, RequestEnd: t0 + 30_000_000, ResponseStart: t0 + 31_000_000, ResponseEnd: t0 + 32_000_000},
		},
		{
			Request: session.Request{Method: "PUT", Target: "/blob", Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "Host", Value: "shop.test"}}, Body: []byte{0xfe, 0, 1}, BodySize: 3},
			Flags:  session.FlagNoResponse,
			Timing: session.Timing{RequestStart: t0 + 40_000_000, RequestEnd: t0 + 40_000_500},
		},
	}
}

func writeAll(t testing.TB, xs []*session.Exchange) []byte {
	var b bytes.Buffer
	sourcetest.WriteAll(t, NewWriter(&b), xs)
	return b.Bytes()
}

func readAll(t testing.TB, data []byte, opts ...Option) ([]*session.Exchange, []*EntryError, *Reader) {
	r, err := NewReader(bytes.NewReader(data), opts...)
	if err != nil {
		t.Fatal(err)
	}
	xs, errs, err := sourcetest.Drain[*EntryError](t, r, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return xs, errs, r
}

func TestRoundTrip(t *testing.T) {
	data := writeAll(t, sample())
	if !json.Valid(data) {
		t.Fatalf("invalid JSON:\n%s", data)
	}
	got, errs, _ := readAll(t, data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := sample()
	if len(got) != len(want) {
		t.Fatalf("%d exchanges, want %d", len(got), len(want))
	}
	// HAR's startedDateTime holds milliseconds: every timestamp moves by
	// the same sub-millisecond amount.
	shift := t0 % 1e6
	for i, w := range want {
		g := got[i]
		if w.Request.Method != g.Request.Method || w.Request.Target != g.Request.Target || w.Request.Proto != g.Request.Proto {
			t.Errorf("%d: request line %s %s %s, got %s %s %s", i, w.Request.Method, w.Request.Target, w.Request.Proto, g.Request.Method, g.Request.Target, g.Request.Proto)
		}
		if !reflect.DeepEqual(w.Request.Header, g.Request.Header) || !bytes.Equal(w.Request.Body, g.Request.Body) {
			t.Errorf("%d: request %q %q, got %q %q", i, w.Request.Header, w.Request.Body, g.Request.Header, g.Request.Body)
		}
		if w.Response.Status != g.Response.Status || w.Response.Reason != g.Response.Reason || w.Response.Proto != g.Response.Proto {
			t.Errorf("%d: status %d %q, got %d %q", i, w.Response.Status, w.Response.Reason, g.Response.Status, g.Response.Reason)
		}
		if !reflect.DeepEqual(w.Response.Header, g.Response.Header) || !bytes.Equal(w.Response.Body, g.Response.Body) {
			t.Errorf("%d: response %q %q, got %q %q", i, w.Response.Header, w.Response.Body, g.Response.Header, g.Response.Body)
		}
		wt := w.Timing
		wt.RequestStart -= shift
		wt.RequestEnd -= shift
		if wt.ResponseEnd != 0 {
			wt.ResponseStart -= shift
			wt.ResponseEnd -= shift
		}
		if wt != g.Timing {
			t.Errorf("%d: timing %+v, got %+v", i, wt, g.Timing)
		}
		if w.Flags != g.Flags {
			t.Errorf("%d: flags %v, got %v", i, w.Flags, g.Flags)
		}
		if w.Conn.Server != g.Conn.Server {
			t.Errorf("%d: server %v, got %v", i, w.Conn.Server, g.Conn.Server)
		}
	}
	if got[0].Conn.ID != got[1].Conn.ID || got[1].Index != 1 || got[2].Conn.ID == got[0].Conn.ID {
		t.Errorf("connections: %+v %+v %+v", got[0].Conn, got[1].Conn, got[2].Conn)
	}
}

// The HAR that devtools and Playwright read: required fields present,
// arrays never null, the gzip body decoded.
func TestWriterShape(t *testing.T) {
	var doc struct {
		Log struct {
			Version string
			Pages   []map[string]any
			Entries []map[string]any
		}
	}
	if err := json.Unmarshal(writeAll(t, sample()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Log.Version != "1.2" || len(doc.Log.Pages) != 1 || len(doc.Log.Entries) != 4 {
		t.Fatalf("log %+v", doc.Log)
	}
	for i, e := range doc.Log.Entries {
		for _, k := range []string{"startedDateTime", "time", "request", "response", "cache", "timings"} {
			if _, ok := e[k]; !ok {
				t.Errorf("entry %d: no %s", i, k)
			}
		}
		req, resp := e["request"].(map[string]any), e["response"].(map[string]any)
		for _, k := range []string{"cookies", "headers", "queryString"} {
			if _, ok := req[k].([]any); !ok {
				t.Errorf("entry %d: request.%s %v", i, k, req[k])
			}
		}
		for _, k := range []string{"cookies", "headers"} {
			if _, ok := resp[k].([]any); !ok {
				t.Errorf("entry %d: response.%s %v", i, k, resp[k])
			}
		}
		c := resp["content"].(map[string]any)
		if c["mimeType"] == "" || c["size"] == nil {
			t.Errorf("entry %d: content %v", i, c)
		}
	}
	c := doc.Log.Entries[2]["response"].(map[string]any)["content"].(map[string]any)
	if c["text"] != "<html>hello</html>" {
		t.Errorf("gzip body not decoded: %v", c["text"])
	}
}

func TestRead(t *testing.T) {
	good := `{"startedDateTime":"2024-01-02T03:04:05.006Z","time":3,"request":{"method":"GET","url":"https://a.test/x?y=1#frag","httpVersion":"http/2.0","headers":[{"name":":authority","value":"a.test"},{"name":"accept","value":"*/*"}]},"response":{"status":200,"statusText":"","httpVersion":"http/2.0","headers":[{"name":"content-encoding","value":"br"},{"name":"content-length","value":"3"}],"content":{"size":5,"mimeType":"text/plain","text":"hello"}},"timings":{"blocked":1,"dns":-1,"connect":-1,"send":0.5,"wait":1,"receive":0.5}}`
	other := strings.Replace(good, "a.test", "b.test", -1)
	wrap := func(entries ...string) string {
		return `{"log":{"version":"1.2","creator":{"name":"x","version":"1"},"entries":[` + strings.Join(entries, ",") + `]}}`
	}
	cases := []struct {
		name  string
		in    string
		opts  []Option
		want  int // exchanges
		errs  []error
		index []int
	}{
		// A browser's entry: HTTP/2 pseudo-fields, decoded body.
		{name: "good", in: wrap(good, other), want: 2},
		// The host filter.
		{name: "host", in: wrap(good, other, good), opts: []Option{Host("A.test")}, want: 2},
		// A file cut inside its second entry: the first is kept.
		{name: "cut", in: wrap(good, good)[:len(wrap(good))+40], want: 1, errs: []error{ErrSyntax}, index: []int{1}},
		// Broken JSON between entries.
		{name: "broken", in: wrap(good, "{]", good), want: 1, errs: []error{ErrSyntax}, index: []int{1}},
		// Missing fields: each entry reported by index, the rest kept.
		{name: "missing", in: wrap(`{"request":{"url":"http://a/"},"startedDateTime":"2024-01-02T03:04:05Z"}`, `{"request":{"method":"GET","url":"/rel"}}`,
			`{"request":{"method":"GET","url":"http://a/"}}`, good), want: 1, errs: []error{ErrBadEntry, ErrBadEntry, ErrBadEntry}, index: []int{0, 1, 2}},
		// Huge and wrongly typed values.
		{name: "huge", in: wrap(strings.Replace(good, `"wait":1`, `"wait":1e300`, 1), strings.Replace(good, `"status":200`, `"status":1e30`, 1),
			strings.Replace(good, `"status":200`, `"status":"200"`, 1), strings.Replace(good, `"status":200`, `"status":123456`, 1), good),
			want: 1, errs: []error{ErrBadEntry, ErrBadEntry, ErrBadEntry, ErrBadEntry}, index: []int{0, 1, 2, 3}},
		// Not a HAR at all.
		{name: "not har", in: `{"foo":[1,2]}`, errs: []error{ErrNotHAR}, index: []int{-1}},
		{name: "array", in: `[1,2]`, errs: []error{ErrNotHAR}, index: []int{-1}},
		{name: "empty", in: ``, errs: []error{ErrSyntax}, index: []int{-1}},
		// WebSocket and data: entries are counted, not damage.
		{name: "unsupported", in: wrap(strings.Replace(good, "https://", "wss://", 1), strings.Replace(good, `"status":200`, `"status":101`, 1),
			strings.Replace(good, "https://a.test/x?y=1#frag", "data:image/png;base64,AAAA", 1), good), want: 1},
		// Other members before log and entries are skipped.
		{name: "order", in: `{"x":{"a":[1]},"log":{"pages":[{}],"entries":[` + good + `]}}`, want: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			xs, errs, r := readAll(t, []byte(c.in), c.opts...)
			if c.name == "unsupported" && (r.Stats().Unsupported["websocket"] != 2 || r.Stats().Unsupported["scheme:data"] != 1) {
				t.Errorf("unsupported %v", r.Stats().Unsupported)
			}
			if len(xs) != c.want {
				t.Errorf("%d exchanges, want %d", len(xs), c.want)
			}
			if len(errs) != len(c.errs) {
				t.Fatalf("errors %v, want %v", errs, c.errs)
			}
			for i, e := range errs {
				if !errors.Is(e, c.errs[i]) || e.Index != c.index[i] {
					t.Errorf("error %d: %v, want %v at entry %d", i, e, c.errs[i], c.index[i])
				}
			}
		})
	}
}

func TestReadBrowserEntry(t *testing.T) {
	in := `{"log":{"entries":[{"startedDateTime":"2024-01-02T03:04:05.006Z","time":3,"request":{"method":"POST","url":"https://a.test:8443/x?y=1#frag","httpVersion":"h2","headers":[{"name":":authority","value":"a.test:8443"},{"name":"accept","value":"*/*"}],"postData":{"mimeType":"application/x-www-form-urlencoded","params":[{"name":"a b","value":"1&2"}]}},"response":{"status":200,"statusText":"","httpVersion":"h2","headers":[{"name":"content-encoding","value":"br"},{"name":"content-length","value":"3"}],"content":{"size":5,"mimeType":"text/plain","text":"aGVsbG8=","encoding":"base64"}},"serverIPAddress":"[2001:db8::1]","connection":"42","timings":{"blocked":1,"dns":-1,"connect":-1,"send":0.5,"wait":1,"receive":0.5}}]}}`
	xs, errs, r := readAll(t, []byte(in))
	if len(errs) > 0 || len(xs) != 1 {
		t.Fatal(errs, len(xs))
	}
	x := xs[0]
	if x.Request.Target != "/x?y=1" || x.Request.Proto != "HTTP/1.1" || string(x.Request.Body) != "a+b=1%262" {
		t.Errorf("request %q %q %q", x.Request.Target, x.Request.Proto, x.Request.Body)
	}
	if want := (session.Headers{{Name: "Host", Value: "a.test:8443"}, {Name: "accept", Value: "*/*"}}); !reflect.DeepEqual(x.Request.Header, want) {
		t.Errorf("headers %q", x.Request.Header)
	}
	if want := (session.Headers{{Name: "content-length", Value: "5"}}); !reflect.DeepEqual(x.Response.Header, want) || string(x.Response.Body) != "hello" {
		t.Errorf("response %q %q", x.Response.Header, x.Response.Body)
	}
	if x.Conn.Server != netip.MustParseAddrPort("[2001:db8::1]:8443") {
		t.Errorf("server %v", x.Conn.Server)
	}
	start := int64(1704164645006000000) + 1e6
	if want := (session.Timing{RequestStart: start, RequestEnd: start + 5e5, ResponseStart: start + 15e5, ResponseEnd: start + 2e6}); x.Timing != want {
		t.Errorf("timing %+v, want %+v", x.Timing, want)
	}
	if len(x.Warnings) != 2 || r.Stats().Hosts["a.test"] != 1 {
		t.Errorf("warnings %q, stats %+v", x.Warnings, r.Stats())
	}
}
