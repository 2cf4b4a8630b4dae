package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// writeGRPC writes a recording with one h2c connection carrying four gRPC
// streams (two of them open at once) and one HTTP/1 connection.
func writeGRPC(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "grpc.rpz")
	fw, err := session.Create(path, session.Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h2 := session.Conn{ID: 1, Client: netip.MustParseAddrPort("127.0.0.1:40000"), Server: netip.MustParseAddrPort("127.0.0.1:50051"), Protocol: session.ProtoH2C}
	start := int64(1767225600e9)
	call := func(i int, method string, status int, msgs []session.Message, at, dur int64) {
		x := &session.Exchange{Conn: h2, Index: i,
			Request:  session.Request{Method: "POST", Target: method, Proto: "HTTP/2.0", Header: session.Headers{{Name: "content-type", Value: "application/grpc"}}},
			Response: session.Response{Proto: "HTTP/2.0", Status: 200, Trailer: session.Headers{{Name: "grpc-status", Value: "0"}}},
			Timing:   session.Timing{RequestStart: start + at, RequestEnd: start + at, ResponseStart: start + at + dur/2, ResponseEnd: start + at + dur},
			Stream:   &session.Stream{ID: uint32(2*i + 1), GRPC: &session.GRPC{HasStatus: true, Status: status, Messages: msgs}},
		}
		if err := fw.WriteExchange(x); err != nil {
			t.Fatal(err)
		}
	}
	in, out := session.Message{Size: 10, At: 1e5}, session.Message{FromServer: true, Size: 20, At: 2e6}
	call(0, "/shop.Shop/Login", 0, []session.Message{in, out}, 0, 3e6)
	call(1, "/shop.Shop/GetOrder", 5, []session.Message{in}, 1e6, 4e6) // overlaps Login
	call(2, "/shop.Shop/GetOrder", 0, []session.Message{in, out}, 10e6, 1e6)
	call(3, "/shop.Shop/Chat", 0, []session.Message{in, out, in, out}, 20e6, 8e6)
	h1 := &session.Exchange{Conn: session.Conn{ID: 2}, Request: session.Request{Method: "GET", Target: "/", Proto: "HTTP/1.1"},
		Response: session.Response{Proto: "HTTP/1.1", Status: 200}, Timing: session.Timing{RequestStart: start + 30e6, ResponseEnd: start + 31e6}}
	if err := fw.WriteExchange(h1); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInspectHTTP2 checks inspect's HTTP/2 figures: protocols per
// connection, streams and concurrency, gRPC methods with their statuses
// and messages, in text and JSON.
func TestInspectHTTP2(t *testing.T) {
	path := writeGRPC(t, t.TempDir())
	var out, errb bytes.Buffer
	if code := run([]string{"inspect", path}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		"connections:      h1 1 h2c 1",
		"streams:          4 (at most 4 on one connection, 2 at once)",
		"gRPC messages:    5 from clients, 4 from servers",
		"gRPC statuses:    OK 3, NotFound 1",
		"/shop.Shop/GetOrder                           2 calls  msgs 2 in / 1 out",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"inspect", "--json", path}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc struct {
		HTTP2 struct {
			Connections    map[string]int `json:"connections"`
			Streams        int            `json:"streams"`
			MaxConcurrency int            `json:"max_concurrency"`
			Methods        []struct {
				Method string `json:"method"`
				Calls  int    `json:"calls"`
			} `json:"grpc_methods"`
		} `json:"http2"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	h := doc.HTTP2
	if h.Connections["h2c"] != 1 || h.Streams != 4 || h.MaxConcurrency != 2 || len(h.Methods) != 3 || h.Methods[0].Method != "/shop.Shop/GetOrder" || h.Methods[0].Calls != 2 {
		t.Errorf("http2 = %+v", h)
	}
}
