package http2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// splitter cuts one direction's DATA into gRPC length-prefixed messages:
// a compressed-flag byte, a 4-byte big-endian length, the payload.
type splitter struct {
	prefix [5]byte
	have   int    // prefix bytes seen of the message in progress
	remain uint32 // payload bytes still to come
	lost   bool   // bytes lost where a prefix may have been: no more messages
}

// feed consumes DATA bytes and calls done for each message completed.
func (m *splitter) feed(p []byte, done func(compressed bool, n uint32)) {
	for len(p) > 0 && !m.lost {
		if m.have < 5 {
			n := copy(m.prefix[m.have:], p)
			m.have += n
			p = p[n:]
			if m.have < 5 {
				return
			}
			m.remain = binary.BigEndian.Uint32(m.prefix[1:])
		}
		n := uint32(min(uint64(m.remain), uint64(len(p))))
		m.remain -= n
		p = p[n:]
		if m.remain == 0 {
			done(m.prefix[0]&1 != 0, binary.BigEndian.Uint32(m.prefix[1:]))
			m.have = 0
		}
	}
}

// partial reports whether a message was begun and not finished.
func (m *splitter) partial() bool { return m.have > 0 || m.lost }

// ErrPayloadCut means a message's bytes were not all kept: the body was
// cut at the recording's body cap or bytes were lost.
var ErrPayloadCut = errors.New("gRPC message not all recorded (body cap or lost bytes)")

// ErrEncoding means a compressed message uses a grpc-encoding that
// session.DecodeBody does not know (or none at all).
var ErrEncoding = errors.New("unsupported grpc-encoding")

// MaxPayload bounds a decompressed message Payload returns.
const MaxPayload = 64 << 20

// Payloads returns the payloads of the gRPC messages one direction of x
// sent, in order, decompressing those with the compressed flag by the
// direction's grpc-encoding (gzip, deflate, br, zstd: session.DecodeBody). A message the body does not hold
// whole ends the list with ErrPayloadCut.
func Payloads(x *session.Exchange, fromServer bool) ([][]byte, error) {
	body, hdr := x.Request.Body, x.Request.Header
	if fromServer {
		body, hdr = x.Response.Body, x.Response.Header
	}
	enc := strings.ToLower(strings.TrimSpace(hdr.Get("grpc-encoding")))
	var out [][]byte
	for len(body) > 0 {
		if len(body) < 5 {
			return out, ErrPayloadCut
		}
		n := binary.BigEndian.Uint32(body[1:5])
		if uint64(len(body)-5) < uint64(n) {
			return out, ErrPayloadCut
		}
		p := body[5 : 5+n]
		if body[0]&1 != 0 {
			var err error
			if p, err = decompress(enc, p); err != nil {
				return out, err
			}
		}
		out = append(out, p)
		body = body[5+n:]
	}
	return out, nil
}

// decompress undoes a compressed message's grpc-encoding with the
// project's one body decoder, session.DecodeBody, which knows gzip,
// deflate, br and zstd and bounds the decoded size.
func decompress(enc string, p []byte) ([]byte, error) {
	if enc == "" || enc == "identity" {
		return nil, fmt.Errorf("%w: compressed flag without a grpc-encoding", ErrEncoding)
	}
	out, err := session.DecodeBody(enc, p, MaxPayload)
	if err != nil {
		var ee *session.EncodingError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%w %q: %v", ErrEncoding, enc, err)
		}
		return nil, fmt.Errorf("grpc message (%s): %w", enc, err)
	}
	return out, nil
}
