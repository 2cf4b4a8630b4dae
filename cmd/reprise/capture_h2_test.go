package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestCaptureInspectGRPC records the committed tcpdump capture of the gRPC
// shop with the capture verb and checks inspect's per-method calls against
// the server's own counts saved beside it.
func TestCaptureInspectGRPC(t *testing.T) {
	const pcap = "../../capture/testdata/grpcshop-lo.pcap"
	raw, err := os.ReadFile("../../capture/testdata/grpcshop-lo.truth.json")
	if err != nil {
		t.Fatal(err)
	}
	var truth struct {
		Counts struct{ Calls map[string]int }
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "grpc.rpz")
	runOK(t, "capture", "--pcap", pcap, "-o", out)
	stdout, _ := runOK(t, "inspect", "--json", out)
	var doc struct {
		HTTP2 struct {
			Connections map[string]int `json:"connections"`
			Methods     []struct {
				Method string `json:"method"`
				Calls  int    `json:"calls"`
			} `json:"grpc_methods"`
		} `json:"http2"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, m := range doc.HTTP2.Methods {
		calls[m.Method] = m.Calls
	}
	if !reflect.DeepEqual(calls, truth.Counts.Calls) || doc.HTTP2.Connections["h2c"] != 2 {
		t.Errorf("inspect: calls %v on %v; the server counted %v", calls, doc.HTTP2.Connections, truth.Counts.Calls)
	}
}
