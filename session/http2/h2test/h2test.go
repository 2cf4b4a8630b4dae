// Package h2test builds HTTP/2 frames for tests, as net/http/httptest
// builds servers: each function returns the bytes of one frame, written by
// golang.org/x/net/http2's Framer, with header blocks from a fresh HPACK
// encoder (static table and literals only, so they decode anywhere).
package h2test

import (
	"bytes"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Settings is an empty SETTINGS frame.
const Settings = "\x00\x00\x00\x04\x00\x00\x00\x00\x00"

// Headers is one HEADERS frame on stream id with END_HEADERS (and
// END_STREAM when end), holding the name-value pairs kv.
func Headers(id uint32, end bool, kv ...string) string {
	var hb, fb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for k := 0; k+1 < len(kv); k += 2 {
		enc.WriteField(hpack.HeaderField{Name: kv[k], Value: kv[k+1]})
	}
	http2.NewFramer(&fb, nil).WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: end, EndHeaders: true})
	return fb.String()
}

// Data is one DATA frame on stream id, with END_STREAM when end.
func Data(id uint32, end bool, p string) string {
	var fb bytes.Buffer
	http2.NewFramer(&fb, nil).WriteData(id, end, []byte(p))
	return fb.String()
}
