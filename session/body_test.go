package session

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

func TestDecodeBody(t *testing.T) {
	plain := []byte(`{"access_token":"abc","expires_in":3600}`)
	gz := testkit.Encode(t, "gzip", plain)
	bomb := testkit.Encode(t, "gzip", make([]byte, 4<<20))
	var unknown *EncodingError
	cases := []struct {
		name     string
		encoding string
		body     []byte
		limit    int
		want     []byte
		err      error // errors.Is target; nil means success
		unknown  bool  // an *EncodingError is expected
	}{
		// No header and "identity" give the body itself.
		{name: "none", body: plain, want: plain},
		{name: "identity", encoding: " Identity ", body: plain, want: plain},
		// gzip and its old alias, in any case.
		{name: "gzip", encoding: "gzip", body: gz, want: plain},
		{name: "x-gzip", encoding: "X-GZIP", body: gz, want: plain},
		// deflate as RFC 9110 says (zlib) and as some servers send it (raw).
		{name: "deflate zlib", encoding: "deflate", body: testkit.Encode(t, "zlib", plain), want: plain},
		{name: "deflate raw", encoding: "deflate", body: testkit.Encode(t, "raw", plain), want: plain},
		// brotli, which browsers ask for first.
		{name: "br", encoding: "br", body: testkit.Encode(t, "br", plain), want: plain},
		// Stacked codings are undone last first; identity entries are skipped.
		{name: "gzip then br", encoding: "gzip, br", body: testkit.Encode(t, "br", gz), want: plain},
		{name: "identity in a list", encoding: "identity, gzip", body: gz, want: plain},
		// A bomb stops at the limit with the prefix and ErrBodyTooLarge.
		{name: "bomb", encoding: "gzip", body: bomb, limit: 1000, want: make([]byte, 1000), err: ErrBodyTooLarge},
		// Exactly the limit is not too large.
		{name: "at limit", encoding: "gzip", body: gz, limit: len(plain), want: plain},
		// A cut stream gives what decoded and an error.
		{name: "truncated gzip", encoding: "gzip", body: gz[:len(gz)-6], want: plain, err: io.ErrUnexpectedEOF},
		// Not gzip at all.
		{name: "bad gzip header", encoding: "gzip", body: plain, err: gzip.ErrHeader},
		// A coding nobody here decodes.
		{name: "zstd", encoding: "zstd", body: plain, unknown: true},
		{name: "unknown under gzip", encoding: "compress, gzip", body: gz, unknown: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeBody(c.encoding, c.body, c.limit)
			switch {
			case c.unknown:
				if !errors.As(err, &unknown) {
					t.Fatalf("err = %v, want *EncodingError", err)
				}
				return
			case c.err == nil && err != nil:
				t.Fatalf("err = %v", err)
			case c.err != nil && !errors.Is(err, c.err):
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if c.err == io.ErrUnexpectedEOF {
				// Some prefix of the body; how much depends on the cut.
				if !bytes.HasPrefix(c.want, got) {
					t.Fatalf("got %q, not a prefix of %q", got, c.want)
				}
				return
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", trim(got), trim(c.want))
			}
		})
	}
}

func trim(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// TestDecodeBodyBombMemory checks that a bomb costs about the limit, not
// its inflated size.
func TestDecodeBodyBombMemory(t *testing.T) {
	bomb := testkit.Encode(t, "br", testkit.Encode(t, "gzip", make([]byte, 64<<20)))
	got, err := DecodeBody("gzip, br", bomb, 1<<10)
	if !errors.Is(err, ErrBodyTooLarge) || len(got) != 1<<10 {
		t.Fatalf("len %d, err %v", len(got), err)
	}
}

// FuzzDecodeBody feeds damaged and made-up bodies under every coding: the
// decoder must not panic, must respect the limit, and must give an
// identity body back unchanged.
func FuzzDecodeBody(f *testing.F) {
	plain := []byte("hello, hello, hello")
	f.Add("gzip", testkit.Encode(f, "gzip", plain))
	f.Add("deflate", testkit.Encode(f, "zlib", plain))
	f.Add("deflate", testkit.Encode(f, "raw", plain))
	f.Add("br", testkit.Encode(f, "br", plain))
	f.Add("gzip, br", testkit.Encode(f, "br", testkit.Encode(f, "gzip", plain)))
	f.Add("identity", plain)
	f.Add("zstd", plain)
	f.Fuzz(func(t *testing.T, enc string, body []byte) {
		const limit = 1 << 16
		got, err := DecodeBody(enc, body, limit)
		if len(got) > limit && len(ContentCodings(enc)) > 0 {
			t.Fatalf("decoded %d bytes over the limit", len(got))
		}
		if len(ContentCodings(enc)) == 0 && (err != nil || !bytes.Equal(got, body)) {
			t.Fatalf("identity %q changed the body (err %v)", enc, err)
		}
		if err == nil && strings.Contains(strings.ToLower(enc), "zstd") {
			t.Fatalf("zstd decoded without an error")
		}
	})
}
