package shadow

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
)

// TestHTTP2Skipped: HTTP/2 streams (a gRPC call, a plain h2 GET) are not
// sent to the shadow until replay/wire speaks HTTP/2; they are counted as
// skipped "http2", and the HTTP/1 exchanges beside them still go.
func TestHTTP2Skipped(t *testing.T) {
	srv := &seenServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	grpcCall := ex(2, "POST", "/grpcshop.Shop/GetOrder", session.Headers{{Name: "content-type", Value: "application/grpc"}}, "\x00\x00\x00\x00\x00", 200, "")
	grpcCall.Conn.Protocol = session.ProtoH2C
	get := ex(3, "GET", "/api/h2", nil, "", 200, `{}`)
	get.Conn.Protocol = session.ProtoH2
	m, err := New(Config{Shadow: hs.URL, AllowWrites: true, NoiseShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := m.Run(context.Background(), &shoptest.SliceSource{Exchanges: []*session.Exchange{grpcCall, get, ex(1, "GET", "/api/h1", nil, "", 200, `{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.lines(); len(got) != 1 || got[0] != "GET /api/h1  " {
		t.Errorf("shadow saw %q", got)
	}
	if fmt.Sprint(sum.Stats.Skipped) != "map[http2:2]" {
		t.Errorf("skipped %v", sum.Stats.Skipped)
	}
}
