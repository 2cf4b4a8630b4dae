package session

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
)

// ErrBodyTooLarge means a decoded body was longer than the limit given to
// DecodeBody; the bytes returned with it are the first limit bytes. It
// usually means a very large answer or a compression bomb, and a caller
// that only reads a prefix (tokens, identifiers) may use them as they are.
var ErrBodyTooLarge = errors.New("session: decoded body exceeds the limit")

// DefaultDecodeLimit is the decoded size DecodeBody allows when given no
// limit: larger than any answer worth comparing field by field, small
// enough that a bomb in a recording cannot exhaust memory.
const DefaultDecodeLimit = 16 << 20

// EncodingError reports a Content-Encoding that DecodeBody cannot undo
// ("compress", "zstd", a made-up coding). The body was left as it is.
type EncodingError struct {
	Coding string // the content-coding, lower-case
}

func (e *EncodingError) Error() string {
	return fmt.Sprintf("session: content-encoding %q not decoded", e.Coding)
}

// DecodeBody undoes a body's Content-Encoding, given as the header's value:
// "", "identity", "gzip" (and "x-gzip"), "deflate" (the zlib wrapping
// RFC 9110 asks for, or the raw deflate some servers send), "br", or a
// list of them applied in order ("gzip, br" is undone br first). Every
// reader, recorder and comparer of bodies calls this one decoder so that
// they agree on which bodies they can read.
//
// At most limit decoded bytes are produced (limit <= 0 means
// DefaultDecodeLimit); the stages stream into each other, so a compression
// bomb costs about limit bytes (plus a brotli window, at most 16 MiB), not
// its inflated size. A longer body gives its first limit bytes and
// ErrBodyTooLarge.
// A damaged stream gives what decoded before the damage and the error;
// an unknown coding gives nil and an *EncodingError. An identity body is
// returned as it is, without a copy, whatever its length.
func DecodeBody(contentEncoding string, body []byte, limit int) ([]byte, error) {
	codings := ContentCodings(contentEncoding)
	if len(codings) == 0 {
		return body, nil
	}
	if limit <= 0 {
		limit = DefaultDecodeLimit
	}
	var r io.Reader = bytes.NewReader(body)
	for i := len(codings) - 1; i >= 0; i-- {
		next, err := codingReader(codings[i], r)
		if err != nil {
			return nil, err
		}
		r = next
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if len(out) > limit {
		return out[:limit], ErrBodyTooLarge
	}
	if err != nil {
		err = fmt.Errorf("session: %s body: %w", strings.Join(codings, ", "), err)
	}
	return out, err
}

// ContentCodings splits a Content-Encoding value into its lower-case
// codings, in the order they were applied, dropping "identity" and empty
// entries: none means the body is sent as it is.
func ContentCodings(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	var out []string
	for c := range strings.SplitSeq(v, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		if c != "" && c != "identity" {
			out = append(out, c)
		}
	}
	return out
}

// codingReader wraps r in the reader that undoes coding.
func codingReader(coding string, r io.Reader) (io.Reader, error) {
	switch coding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("session: gzip body: %w", err)
		}
		return zr, nil
	case "deflate":
		br := bufio.NewReader(r)
		if h, err := br.Peek(2); err == nil && zlibHeader(h[0], h[1]) {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, fmt.Errorf("session: deflate body: %w", err)
			}
			return zr, nil
		}
		return flate.NewReader(br), nil
	case "br":
		return brotli.NewReader(r), nil
	default:
		return nil, &EncodingError{Coding: coding}
	}
}

// zlibHeader tells a zlib stream (RFC 1950: method 8, a window of at most
// 32 KiB, no preset dictionary, a header checksum) from raw deflate, which
// browsers and servers both send as "deflate".
func zlibHeader(cmf, flg byte) bool {
	return cmf&0x0f == 8 && cmf>>4 <= 7 && flg&0x20 == 0 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}
