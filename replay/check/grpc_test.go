package check

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/pcapfile"
)

// The routes of a gRPC recording are its methods, one each, as the
// server named them: check's figures are per method.
func TestGRPCRoutesAreMethods(t *testing.T) {
	pk, err := pcapfile.Open(filepath.Join("..", "..", "capture", "testdata", "grpcshop-lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer pk.Close()
	p, err := capture.FromPackets(context.Background(), pk)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Build(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /grpcshop.Shop/Chat", "POST /grpcshop.Shop/CreateOrder", "POST /grpcshop.Shop/GetOrder",
		"POST /grpcshop.Shop/ListItems", "POST /grpcshop.Shop/Login", "POST /grpcshop.Shop/Refresh", "POST /grpcshop.Shop/Upload"}
	got := slices.Sorted(slices.Values(rec.Routes))
	if !slices.Equal(got, want) {
		t.Errorf("routes %q, want the methods %q", got, want)
	}
}
