package shadow

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
)

// TestHTTP2: exchanges recorded over HTTP/2 (a gRPC call, a plain GET)
// are mirrored over HTTP/2 to an h2c shadow, beside an HTTP/1 exchange
// mirrored over HTTP/1; nothing is skipped, and the shadow's grpc-status
// is compared with the primary's.
func TestHTTP2(t *testing.T) {
	srv := &seenServer{}
	var mu sync.Mutex
	protos := map[string]string{}
	hs := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.URL.Path] = r.Proto
		mu.Unlock()
		if r.Header.Get("content-type") == "application/grpc" {
			w.Header().Set("content-type", "application/grpc")
			w.Header().Set("Trailer", "grpc-status")
			w.Write([]byte("\x00\x00\x00\x00\x00"))
			w.Header().Set("grpc-status", "5") // NotFound, where the primary answered OK
			return
		}
		srv.ServeHTTP(w, r)
	}), &http2.Server{}))
	defer hs.Close()
	grpcCall := ex(2, "POST", "/grpcshop.Shop/GetOrder", session.Headers{{Name: ":method", Value: "POST"}, {Name: ":path", Value: "/grpcshop.Shop/GetOrder"},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"}}, "\x00\x00\x00\x00\x00", 200, "\x00\x00\x00\x00\x00")
	grpcCall.Conn.Protocol, grpcCall.Request.Proto, grpcCall.Response.Proto = session.ProtoH2C, "HTTP/2.0", "HTTP/2.0"
	grpcCall.Response.Header = session.Headers{{Name: "content-type", Value: "application/grpc"}}
	grpcCall.Response.Trailer = session.Headers{{Name: "grpc-status", Value: "0"}}
	grpcCall.Stream = &session.Stream{ID: 1, GRPC: &session.GRPC{HasStatus: true, Messages: []session.Message{{Size: 0}, {FromServer: true, Size: 0}}}}
	get := ex(3, "GET", "/api/h2", session.Headers{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":path", Value: "/api/h2"},
		{Name: ":authority", Value: "shop.test"}, {Name: "x-user", Value: "ann"}}, "", 200, `{}`)
	get.Conn.Protocol, get.Request.Proto = session.ProtoH2, "HTTP/2.0"
	m, err := New(Config{Shadow: hs.URL, AllowWrites: true, NoiseShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := m.Run(context.Background(), &shoptest.SliceSource{Exchanges: []*session.Exchange{grpcCall, get, ex(1, "GET", "/api/h1", nil, "", 200, `{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.lines()
	sort.Strings(got)
	if fmt.Sprint(got) != "[GET /api/h1   GET /api/h2  ann]" {
		t.Errorf("shadow saw %q", got)
	}
	want := map[string]string{"/api/h1": "HTTP/1.1", "/api/h2": "HTTP/2.0", "/grpcshop.Shop/GetOrder": "HTTP/2.0"}
	if fmt.Sprint(protos) != fmt.Sprint(want) {
		t.Errorf("protocols %v, want %v", protos, want)
	}
	st := sum.Stats
	if len(st.Skipped) != 0 || st.Sent != 3 || st.Errors != 0 || st.Compared != 3 {
		t.Errorf("stats %+v", st)
	}
	// One comparison is below the noise rule's minimum count, so the
	// difference is listed but not yet reported as differing.
	told := false
	for _, r := range sum.Compare.Routes {
		for _, f := range append(r.Fields, r.Noise...) {
			told = told || r.Route == "POST /grpcshop.Shop/GetOrder" && f.Path == "grpc-status" && fmt.Sprint(f.Examples) == "[{0 OK 5 NotFound}]"
		}
	}
	if !told {
		t.Errorf("the shadow's grpc-status 5 was not told from the primary's 0: %+v", sum.Compare)
	}
}

// TestHTTP2TLS: to an https:// shadow, an exchange recorded over h2 goes
// as HTTP/2 by ALPN, and an HTTP/1 one stays HTTP/1.1.
func TestHTTP2TLS(t *testing.T) {
	var mu sync.Mutex
	protos := map[string]string{}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.URL.Path] = r.Proto + " " + r.Host
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	hs.EnableHTTP2 = true
	hs.StartTLS()
	defer hs.Close()
	get := ex(3, "GET", "/api/h2", session.Headers{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":path", Value: "/api/h2"},
		{Name: ":authority", Value: "shop.test"}}, "", 200, `{}`)
	get.Conn.Protocol, get.Request.Proto = session.ProtoH2, "HTTP/2.0"
	m, err := New(Config{Shadow: hs.URL, NoiseShare: -1, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := m.Run(context.Background(), &shoptest.SliceSource{Exchanges: []*session.Exchange{get, ex(1, "GET", "/api/h1", nil, "", 200, `{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	host := hs.Listener.Addr().String()
	want := map[string]string{"/api/h1": "HTTP/1.1 " + host, "/api/h2": "HTTP/2.0 " + host}
	if fmt.Sprint(protos) != fmt.Sprint(want) {
		t.Errorf("protocols %v, want %v", protos, want)
	}
	if st := sum.Stats; st.Sent != 2 || st.Errors != 0 || st.Compared != 2 {
		t.Errorf("stats %+v", st)
	}
}
