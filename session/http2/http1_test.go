package http2

import (
	"reflect"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

func hs(kv ...string) session.Headers {
	h := session.Headers{}
	for k := 0; k+1 < len(kv); k += 2 {
		h = append(h, session.Header{Name: kv[k], Value: kv[k+1]})
	}
	return h
}

func TestAsHTTP1(t *testing.T) {
	tests := []struct {
		name         string
		in           session.Request
		method, path string
		want         session.Headers
	}{
		// The usual request: pseudo-header fields go, :authority becomes Host, first.
		{"get", session.Request{Method: "GET", Target: "/a?b=1", Proto: "HTTP/2.0",
			Header: hs(":method", "GET", ":scheme", "https", ":authority", "shop:8080", ":path", "/a?b=1", "accept", "*/*")},
			"GET", "/a?b=1", hs("host", "shop:8080", "accept", "*/*")},
		// A host field of its own wins over :authority, where it stood.
		{"host", session.Request{Method: "GET", Target: "/", Proto: "HTTP/2.0",
			Header: hs(":method", "GET", ":authority", "a", ":path", "/", "x", "1", "host", "b")},
			"GET", "/", hs("x", "1", "host", "b")},
		// Cookies sent one pair per field are joined where the first stood.
		{"cookies", session.Request{Method: "GET", Target: "/", Proto: "HTTP/2.0",
			Header: hs(":method", "GET", ":path", "/", "cookie", "a=1", "accept", "x", "cookie", "b=2")},
			"GET", "/", hs("cookie", "a=1; b=2", "accept", "x")},
		// te: trailers is kept, named in Connection; other te values and
		// connection-specific fields are dropped.
		{"te", session.Request{Method: "POST", Target: "/p.S/M", Proto: "HTTP/2.0",
			Header: hs(":method", "POST", ":path", "/p.S/M", "te", "trailers", "keep-alive", "5", "connection", "close", "upgrade", "h2c")},
			"POST", "/p.S/M", hs("te", "trailers", "connection", "te")},
		{"te gzip", session.Request{Method: "GET", Target: "/", Proto: "HTTP/2.0",
			Header: hs(":method", "GET", ":path", "/", "te", "gzip")},
			"GET", "/", hs()},
		// Method and target missing from the struct come from the pseudo-header fields.
		{"from pseudo", session.Request{Proto: "HTTP/2.0",
			Header: hs(":method", "DELETE", ":path", "/x/1", ":authority", "h")},
			"DELETE", "/x/1", hs("host", "h")},
		// A CONNECT has no :path: its target is the authority.
		{"connect", session.Request{Method: "CONNECT", Proto: "HTTP/2.0",
			Header: hs(":method", "CONNECT", ":authority", "db:5432")},
			"CONNECT", "db:5432", hs("host", "db:5432")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Header = append(session.Headers(nil), tc.in.Header...)
			got := AsHTTP1(&in)
			if got.Proto != "HTTP/1.1" || got.Method != tc.method || got.Target != tc.path {
				t.Errorf("got %s %s %s, want %s %s HTTP/1.1", got.Method, got.Target, got.Proto, tc.method, tc.path)
			}
			if !reflect.DeepEqual(got.Header, tc.want) {
				t.Errorf("header %v, want %v", got.Header, tc.want)
			}
			if !reflect.DeepEqual(in.Header, tc.in.Header) {
				t.Errorf("the recorded request changed: %v", in.Header)
			}
		})
	}
}

// An HTTP/1 request is its own HTTP/1 form: no copy.
func TestAsHTTP1Identity(t *testing.T) {
	req := &session.Request{Method: "GET", Target: "/", Proto: "HTTP/1.1", Header: hs("Host", "a")}
	if AsHTTP1(req) != req {
		t.Fatal("an HTTP/1 request was copied")
	}
}

func TestNeedsHTTP2(t *testing.T) {
	for ct, want := range map[string]bool{"application/grpc": true, "application/grpc+proto": true, "Application/GRPC-web": false, "application/json": false, "": false} {
		if got := NeedsHTTP2(&session.Request{Header: hs("content-type", ct)}); got != want {
			t.Errorf("%q: %v, want %v", ct, got, want)
		}
	}
}

// The engine asks NeedsHTTP2 of every exchange: it allocates nothing.
func TestNeedsHTTP2Allocs(t *testing.T) {
	req := &session.Request{Header: hs("Host", "a", "Content-Type", "Application/GRPC+proto")}
	if n := testing.AllocsPerRun(100, func() { NeedsHTTP2(req) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}
