package wire

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reprise-tool/reprise/session"
)

// h2ServerBytes is a server's side of a connection answering stream 1:
// SETTINGS, the ack, response headers, data and trailers (gRPC-like).
func h2ServerBytes(status string, grpc bool) []byte {
	var out, hb bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	enc := hpack.NewEncoder(&hb)
	fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 2}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	fr.WriteSettingsAck()
	fr.WritePing(false, [8]byte{1})
	enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	fr.WriteWindowUpdate(0, 100)
	fr.WriteWindowUpdate(1, 100)
	fr.WriteData(1, !grpc, []byte("\x00\x00\x00\x00\x02hi"))
	if grpc {
		hb.Reset()
		enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: "5"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	}
	fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	fr.WriteRSTStream(3, http2.ErrCodeRefusedStream)
	return out.Bytes()
}

// FuzzH2Frames feeds the HTTP/2 client arbitrary server bytes for one
// stream: whatever they are, the stream ends (with a response or an
// error), and nothing panics or hangs.
func FuzzH2Frames(f *testing.F) {
	f.Add(h2ServerBytes("200", false))
	f.Add(h2ServerBytes("200", true))
	f.Add(h2ServerBytes("103", false))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		cli, srv := net.Pipe()
		defer cli.Close()
		go io.Copy(io.Discard, srv)
		go func() {
			srv.Write(b)
			srv.Close()
		}()
		w := NewH2(Config{ConnectTimeout: time.Second, Timeout: 500 * time.Millisecond, BodyLimit: 64})
		c := newH2Conn(w, cli)
		if err := c.start(); err != nil {
			return
		}
		close(c.settings)
		go c.readLoop()
		go c.sweepLoop()
		req := &H2Request{Request: &Request{Method: "POST", Target: "/s.S/M", Host: "h", Body: []byte("\x00\x00\x00\x00\x01a"),
			Header: session.Headers{{Name: "te", Value: "trailers"}}}, GRPC: true, Trailer: session.Headers{{Name: "x", Value: "y"}}}
		resp, _, err := c.roundTrip(context.Background(), req)
		if err == nil && (resp == nil || resp.Status < 200) {
			t.Fatalf("no error and response %+v", resp)
		}
		c.close(ErrClosed, false)
	})
}
