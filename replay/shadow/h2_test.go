package shadow

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
)

// TestHTTP2: a gRPC call is not sent to the shadow until replay/wire
// speaks HTTP/2 (counted as skipped "http2"); a plain HTTP/2 request goes
// in its HTTP/1 form, as the replay engine sends it, beside the HTTP/1
// exchanges.
func TestHTTP2(t *testing.T) {
	srv := &seenServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	grpcCall := ex(2, "POST", "/grpcshop.Shop/GetOrder", session.Headers{{Name: "content-type", Value: "application/grpc"}}, "\x00\x00\x00\x00\x00", 200, "")
	grpcCall.Conn.Protocol = session.ProtoH2C
	grpcCall.Request.Proto = "HTTP/2.0"
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
	if fmt.Sprint(sum.Stats.Skipped) != "map[http2:1]" {
		t.Errorf("skipped %v", sum.Stats.Skipped)
	}
}
