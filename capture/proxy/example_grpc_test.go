package proxy_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/grpcshop"
)

// A recording proxy in front of a gRPC service: the client dials the
// proxy as it would the service (h2c), the call goes through untouched,
// and its stream comes out of Next with the HTTP/2 and gRPC fields a
// packet capture records.
func ExampleProxy_gRPC() {
	shop := grpcshop.NewServer()
	service, stopService, err := shop.Serve("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer stopService()

	p, err := proxy.New("http://" + service)
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	addr, served, err := p.Start(ctx, "127.0.0.1:0", false)
	if err != nil {
		panic(err)
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	client := &grpcshop.Client{Conn: conn}
	if err := client.Login(ctx, "ann", "secret"); err != nil {
		panic(err)
	}
	conn.Close()

	x, err := p.Next()
	if err != nil {
		panic(err)
	}
	g := x.Stream.GRPC
	fmt.Println("recorded:", x.Conn.Protocol, "stream", x.Stream.ID, x.GRPCMethod(), "grpc-status", g.Status, "messages", len(g.Messages))

	stop()
	served()
	fmt.Println("connections by protocol:", p.Stats().Protocols)
	// Output:
	// recorded: h2c stream 1 /grpcshop.Shop/Login grpc-status 0 messages 2
	// connections by protocol: map[h2c:1]
}
