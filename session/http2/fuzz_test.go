package http2

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/net/http2"

	"github.com/reprise-tool/reprise/session"
)

var update = flag.Bool("update", false, "rewrite the seed corpus in testdata/fuzz")

// encodeChunks packs chunks as the fuzzer reads them: per chunk a byte
// whose low bit is the direction and whose other bits say how many pieces
// to cut it in, a 2-byte length, the bytes.
func encodeChunks(cs []chunk) []byte {
	var b []byte
	for k, c := range cs {
		b = append(b, byte(c.dir)|byte(k%4)<<1, byte(len(c.data)>>8), byte(len(c.data)))
		b = append(b, c.data...)
	}
	return b
}

// seeds are connections the unit tests build, whole and cut.
func seeds() [][]byte {
	w := newWire(true)
	w.headers(0, 1, false, ":method", "POST", ":scheme", "http", ":authority", "shop", ":path", "/shop.Shop/Chat", "content-type", "application/grpc")
	w.data(0, 1, true, grpcMsg("hello"))
	w.headers(1, 1, false, ":status", "200", "content-type", "application/grpc")
	w.data(1, 1, false, grpcMsg("world"))
	w.headers(1, 1, true, "grpc-status", "0")
	w.headers(0, 3, true, ":method", "GET", ":scheme", "http", ":authority", "shop", ":path", "/x")
	w.fr[1].WriteRSTStream(3, http2.ErrCodeRefusedStream)
	w.flush(1)
	w.fr[1].WriteGoAway(3, http2.ErrCodeNo, nil)
	w.flush(1)
	return [][]byte{encodeChunks(w.chunks), encodeChunks(w.chunks[3:]), encodeChunks(w.chunks[6:])}
}

// FuzzAssembler feeds arbitrary bytes to both directions, from the start
// and mid-connection: it must not panic, and every started stream must be
// emitted or dropped exactly once.
func FuzzAssembler(f *testing.F) {
	for k, s := range seeds() {
		f.Add(s)
		if *update {
			dir := filepath.Join("testdata", "fuzz", "FuzzAssembler")
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", k)), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s), 0o644)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, start := range []bool{true, false} {
			r := &recorder{}
			a := New(Config{Conn: session.Conn{Protocol: session.ProtoH2C}, MaxBody: 64, Start: start, GuessedRoles: !start}, r)
			p := b
			ts := int64(1)
			for len(p) >= 3 {
				dir, pieces := int(p[0]&1), int(p[0]>>1)%4+1
				n := min(int(p[1])<<8|int(p[2]), len(p)-3)
				c := p[3 : 3+n]
				p = p[3+n:]
				step := max(1, len(c)/pieces)
				for len(c) > 0 {
					k := min(step, len(c))
					a.Feed(dir, c[:k], ts)
					c = c[k:]
				}
				if pieces == 4 && dir == 1 {
					a.Gap(0, -1, ts)
				} else if pieces == 3 && dir == 1 {
					a.Gap(1, n%300, ts)
				}
				ts++
			}
			a.Close()
			if r.started != len(r.exs)+r.dropped {
				t.Fatalf("%d started, %d emitted, %d dropped", r.started, len(r.exs), r.dropped)
			}
			for _, x := range r.exs {
				for _, h := range []struct {
					body  []byte
					size  int64
					trunc bool
				}{{x.Request.Body, x.Request.BodySize, x.Flags&session.FlagRequestTruncated != 0},
					{x.Response.Body, x.Response.BodySize, x.Flags&session.FlagResponseTruncated != 0}} {
					if len(h.body) > 64 || int64(len(h.body)) > h.size || h.trunc != (h.size > 64) {
						t.Fatalf("body %d bytes, size %d, truncated %v", len(h.body), h.size, h.trunc)
					}
				}
				if x.Flags&session.FlagNoResponse != 0 && x.Response.Status != 0 {
					t.Fatalf("no-response flag with status %d", x.Response.Status)
				}
			}
		}
	})
}
