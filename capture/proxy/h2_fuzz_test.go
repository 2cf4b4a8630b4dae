package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
	"github.com/reprise-tool/reprise/session/http2/h2test"
)

// chunks reads at most n bytes per Read, so frames arrive split across
// reads as they do from a socket.
type chunks struct {
	r io.Reader
	n int
}

func (c chunks) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// grpcSeeds are a gRPC call's two directions (the client's after the
// preface), and a call reset by the client.
func grpcSeeds() [][2]string {
	req := h2test.Headers(1, false, ":method", "POST", ":scheme", "http", ":path", "/grpcshop.Shop/Chat", ":authority", "shop", "content-type", "application/grpc")
	msg := "\x00\x00\x00\x00\x03\x0a\x01a"
	return [][2]string{
		{h2test.Settings + req + h2test.Data(1, false, msg) + h2test.Data(1, true, msg),
			h2test.Settings + h2test.Headers(1, false, ":status", "200", "content-type", "application/grpc") + h2test.Data(1, false, msg) + h2test.Headers(1, true, "grpc-status", "0")},
		{h2test.Settings + req + "\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00\x08", // RST_STREAM CANCEL
			h2test.Settings + h2test.Headers(1, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "1")},
	}
}

// FuzzH2Relay runs the HTTP/2 relay over any bytes in each direction, in
// reads of any size: it must forward every byte unchanged whatever the
// frames hold, and what it records must be well formed (bodies within the
// cap, every stream begun finished once the connection ends).
func FuzzH2Relay(f *testing.F) {
	for _, s := range grpcSeeds() {
		f.Add([]byte(s[0]), []byte(s[1]), uint8(7))
	}
	f.Fuzz(func(t *testing.T, client, server []byte, step uint8) {
		p, err := New("http://127.0.0.1:1", WithMaxBody(64), WithQueue(1<<16))
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		defer b.Close()
		c := p.newConn(a)
		h := c.newH2(session.ProtoH2C, nil)
		n := int(step%32) + 1
		fromClient := append([]byte(http2.Preface), client...)
		var up, down bytes.Buffer
		h.relay(http2.FromClient, &up, bufio.NewReaderSize(chunks{bytes.NewReader(fromClient), n}, 16), bufio.NewWriter(io.Discard))
		h.relay(http2.FromServer, &down, bufio.NewReaderSize(chunks{bytes.NewReader(server), n + 3}, 16), bufio.NewWriter(io.Discard))
		if !bytes.Equal(up.Bytes(), fromClient) || !bytes.Equal(down.Bytes(), server) {
			t.Fatalf("relayed %d of %d bytes up, %d of %d down", up.Len(), len(fromClient), down.Len(), len(server))
		}
		if k := c.inflight.Load(); k != 0 {
			t.Fatalf("%d streams begun and never finished", k)
		}
		close(p.out)
		for x := range p.out {
			if len(x.Request.Body) > 64 || len(x.Response.Body) > 64 || x.Stream == nil || x.Conn.Protocol != session.ProtoH2C {
				t.Fatalf("recorded %+v", x)
			}
		}
	})
}

// TestH2RelaySeeds: the fuzzer's seeds are what they say: a gRPC call
// recorded with its messages and status, and a call the client reset.
func TestH2RelaySeeds(t *testing.T) {
	for k, s := range grpcSeeds() {
		p, _ := New("http://127.0.0.1:1")
		a, b := net.Pipe()
		defer b.Close()
		c := p.newConn(a)
		h := c.newH2(session.ProtoH2C, nil)
		h.relay(http2.FromClient, io.Discard, bufio.NewReader(bytes.NewReader(append([]byte(http2.Preface), s[0]...))), bufio.NewWriter(io.Discard))
		h.relay(http2.FromServer, io.Discard, bufio.NewReader(bytes.NewReader([]byte(s[1]))), bufio.NewWriter(io.Discard))
		close(p.out)
		var xs []*session.Exchange
		for x := range p.out {
			xs = append(xs, x)
		}
		if len(xs) != 1 || xs[0].GRPCMethod() != "/grpcshop.Shop/Chat" {
			t.Fatalf("seed %d: recorded %d: %+v", k, len(xs), xs)
		}
		st := xs[0].Stream
		if k == 0 && (len(st.GRPC.Messages) != 3 || !st.GRPC.HasStatus || st.GRPC.Status != 0) ||
			k == 1 && (st.Reset.By != session.PartyClient || st.Reset.Code != 8) {
			t.Errorf("seed %d: %+v", k, xs[0].Stream)
		}
	}
}
