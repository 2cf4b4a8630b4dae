package identity_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/grpcshop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// TestGRPCTokensLinkSessions records the gRPC shop through the recording
// proxy while three clients on three connections call it: ann logs in on
// the first; the second connection shares nothing with it but ann's
// tokens, given by hand, with which it creates an order, refreshes (the
// refresh token inside a protobuf message) and reads the order with the
// new token; bob logs in on the third. The tracker, reading the tokens
// out of the Login and Refresh messages without a schema, puts the first
// two connections' calls in one session across the refresh, and bob's in
// another: two sessions, not one per connection.
func TestGRPCTokensLinkSessions(t *testing.T) {
	shop := grpcshop.NewServer()
	upstream, stopShop, err := shop.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopShop()
	addr, stopProxy := shoptest.StartProxy(t, "http://"+upstream, proxy.WithGrace(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func() *grpcshop.Client {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return &grpcshop.Client{Conn: conn}
	}
	ann, other, bob := dial(), dial(), dial()
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	step(ann.Login(ctx, "ann", "secret"))
	step(bob.Login(ctx, "bob", "secret"))
	other.Token, other.Refresh = ann.Token, ann.Refresh
	resp, err := other.Call(ctx, "CreateOrder", grpcshop.Msg(2, "teapot", 3, 1))
	step(err)
	step(other.RefreshToken(ctx))
	_, err = other.Call(ctx, "GetOrder", resp)
	step(err)
	_, err = bob.Call(ctx, "CreateOrder", grpcshop.Msg(2, "cup", 3, 2))
	step(err)
	for _, c := range []*grpcshop.Client{ann, other, bob} {
		c.Conn.Close()
	}
	xs, _ := stopProxy()
	if len(xs) != 6 {
		t.Fatalf("%d exchanges recorded, want 6", len(xs))
	}

	tr, err := identity.NewTracker()
	step(err)
	src := tr.Recompute(session.NewSliceSource(xs...))
	sessions := map[string][]string{} // session -> calls, "conn method"
	conns := map[string]map[uint64]bool{}
	for {
		x, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		step(err)
		if x.Session == "" {
			t.Errorf("%s on connection %d has no session", x.GRPCMethod(), x.Conn.ID)
			continue
		}
		sessions[x.Session] = append(sessions[x.Session], x.GRPCMethod())
		if conns[x.Session] == nil {
			conns[x.Session] = map[uint64]bool{}
		}
		conns[x.Session][x.Conn.ID] = true
	}
	t.Logf("sessions %v; stats %+v", sessions, tr.Stats())
	if len(sessions) != 2 {
		t.Fatalf("%d sessions, want ann's (two connections) and bob's", len(sessions))
	}
	var two, one int
	for s, calls := range sessions {
		switch {
		case len(calls) == 4 && len(conns[s]) == 2:
			two++ // ann's login, then the other connection's calls with her tokens
		case len(calls) == 2 && len(conns[s]) == 1:
			one++ // bob's
		}
	}
	if two != 1 || one != 1 {
		t.Errorf("sessions %v over connections %v", sessions, conns)
	}
	var refreshes int
	for _, tl := range tr.Close() {
		refreshes += tl.Refreshes
	}
	if refreshes != 1 {
		t.Errorf("%d refreshes in the timelines, want 1", refreshes)
	}
}
