package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
)

// maxInterim bounds the interim (1xx) responses read before the final one.
const maxInterim = 16

// Errors of a response that cannot be read.
var (
	// ErrTooManyInterim means more than 16 interim (1xx) responses came
	// before the final one.
	ErrTooManyInterim = errors.New("malformed HTTP response: too many interim (1xx) responses")
	// ErrUnsupportedEncoding means a response's Transfer-Encoding does
	// not end in chunked: a client that cannot decode the coding
	// refuses it, as net/http's does.
	ErrUnsupportedEncoding = errors.New("malformed HTTP response: unsupported transfer encoding")
)

// readResponseInto reads one final response to a request of the given
// method into resp, skipping interim 1xx responses, and returns the body's
// size and whether the connection can carry another exchange. The status
// line and header fields are parsed in place in the reader's buffer
// (http1.HeadReader), then one string of the whole header block backs
// the fields' names and values: net/http's ReadResponse builds a map,
// canonicalises every name and allocates each value, which made up a
// fifth of a request's cost at --speed max. The framing is http1's. The
// first limit bytes of the body are kept; a negative limit keeps neither
// the header fields nor the body, for a status-only read.
func (c *Conn) readResponseInto(resp *session.Response, method string, limit int64, reason bool) (int64, bool, error) {
	c.head.KeepReason = reason && limit >= 0
	s := &c.status
	for interim := 0; ; interim++ {
		if err := c.head.ReadResponse(c.br, s); err != nil {
			return 0, false, err
		}
		if s.Status/100 == 1 && s.Status != 101 {
			if interim == maxInterim {
				return 0, false, ErrTooManyInterim
			}
			continue
		}
		body, err := s.ResponseBody(method, s.Status)
		if err != nil {
			return 0, false, fmt.Errorf("malformed HTTP response: %w", err)
		}
		if s.Flags&http1.FlagOtherCoding != 0 {
			return 0, false, ErrUnsupportedEncoding
		}
		resp.Proto, resp.Status, resp.Reason = s.Proto, s.Status, s.Reason
		if limit >= 0 {
			resp.Header = c.head.Headers()
		}
		keep := s.Persistent(body) && s.Status != 101
		var n int64
		switch body.Kind {
		case http1.ChunkedBody:
			c.chunked.Reset(c.br)
			resp.Body, n, err = readBody(&c.chunked, -1, limit)
		case http1.LengthBody:
			resp.Body, n, err = readBody(c.br, body.Length, limit)
		case http1.CloseBody:
			resp.Body, n, err = readBody(c.br, -1, limit)
		}
		if err != nil {
			return n, false, err
		}
		resp.BodySize = n
		return n, keep, nil
	}
}

// readBody reads a body whole, keeping the first limit bytes (none for a
// negative limit). size is the announced length, -1 when unknown.
func readBody(r io.Reader, size, limit int64) ([]byte, int64, error) {
	if size == 0 {
		return nil, 0, nil
	}
	if limit < 0 {
		if br, ok := r.(*bufio.Reader); ok && size > 0 {
			var n int64
			for n < size {
				k, err := br.Discard(int(min(size-n, 1<<30)))
				n += int64(k)
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				if err != nil {
					return nil, n, err
				}
			}
			return nil, n, nil
		}
		if size > 0 {
			r = io.LimitReader(r, size)
		}
		n, err := io.Copy(io.Discard, r)
		if err == nil && size > 0 && n < size {
			err = io.ErrUnexpectedEOF
		}
		return nil, n, err
	}
	if size > 0 && size <= limit {
		buf := make([]byte, size)
		n, err := io.ReadFull(r, buf)
		return buf[:n], int64(n), err
	}
	var buf []byte
	chunk := make([]byte, 4096)
	var n int64
	for {
		k, err := r.Read(chunk)
		if k > 0 {
			if int64(len(buf)) < limit {
				keep := min(int64(k), limit-int64(len(buf)))
				buf = append(buf, chunk[:keep]...)
			}
			n += int64(k)
		}
		if err == io.EOF {
			return buf, n, nil
		}
		if err != nil {
			return buf, n, err
		}
	}
}
