package importer

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"github.com/reprise-tool/reprise/capture/gor"
	"github.com/reprise-tool/reprise/capture/har"
	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
	"github.com/reprise-tool/reprise/session"
)

// benchExchanges are the exchanges every import benchmark reads, written
// to each format: API traffic with small JSON bodies and a page of
// listing, so both formats carry the same requests, headers and bodies.
func benchExchanges() []*session.Exchange {
	listing := bytes.Repeat([]byte(`{"id":12345,"name":"a catalogue item","price":"19.90"},`), 24)
	var xs []*session.Exchange
	for i := range 2000 {
		ts := int64(1767225600e9) + int64(i)*5e6
		x := exchange("shop.example.com", fmt.Sprintf("/api/items?page=%d", i), ts)
		x.Request.Header = append(x.Request.Header,
			session.Header{Name: "User-Agent", Value: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
			session.Header{Name: "Accept", Value: "application/json"},
			session.Header{Name: "Cookie", Value: fmt.Sprintf("sid=%08x; theme=dark", i%97)})
		body := append([]byte("["), listing...)
		body = append(body[:len(body)-1], ']')
		if i%4 == 1 {
			x.Request.Method = "POST"
			x.Request.Target = fmt.Sprintf("/api/carts/%d/lines", i)
			x.Request.Body = []byte(`{"item":12345,"quantity":2}`)
			x.Request.BodySize = int64(len(x.Request.Body))
			x.Request.Header = append(x.Request.Header, session.Header{Name: "Content-Type", Value: "application/json"},
				session.Header{Name: "Content-Length", Value: fmt.Sprint(len(x.Request.Body))})
			body = []byte(`{"ok":true}`)
		}
		x.Response.Header = session.Headers{{Name: "Content-Type", Value: "application/json"},
			{Name: "Content-Length", Value: fmt.Sprint(len(body))}, {Name: "Cache-Control", Value: "no-store"}}
		x.Response.Body, x.Response.BodySize = body, int64(len(body))
		xs = append(xs, x)
	}
	return xs
}

// benchFiles are the benchmark exchanges as a .gor, a HAR and a .gor.gz.
func benchFiles(b *testing.B) (gorData, harData, gorGz []byte) {
	xs := benchExchanges()
	var g, h, z bytes.Buffer
	sourcetest.WriteAll(b, gor.NewWriter(&g), xs)
	sourcetest.WriteAll(b, har.NewWriter(&h), xs)
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(g.Bytes()); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	// Every exchange reads back from each, undamaged, or the speeds
	// would measure something else.
	for _, f := range []struct {
		data []byte
		open func(io.Reader) (session.Source, error)
	}{
		{g.Bytes(), func(r io.Reader) (session.Source, error) { return gor.NewReader(r) }},
		{h.Bytes(), func(r io.Reader) (session.Source, error) { return har.NewReader(r) }},
		{z.Bytes(), func(r io.Reader) (session.Source, error) { return gor.NewReader(r) }},
	} {
		src, err := f.open(bytes.NewReader(f.data))
		if err != nil {
			b.Fatal(err)
		}
		got, errs, err := sourcetest.Drain[error](b, src, 1<<24)
		if err != nil || len(errs) > 0 || len(got) != len(xs) {
			b.Fatalf("read back %d of %d exchanges, damage %v, %v", len(got), len(xs), errs, err)
		}
	}
	return g.Bytes(), h.Bytes(), z.Bytes()
}

// The import speeds for the README, one core (-cpu 1): bytes of .gor and
// of HAR per second read into exchanges, the same exchanges in both, and
// beside them a .gor.gz read into exchanges and plain gunzip of the same
// .gor.gz, both counted in bytes of .gor (uncompressed), so the four
// figures share one unit and the last two say what gzip costs of it.

func BenchmarkImportGor(b *testing.B) {
	g, _, _ := benchFiles(b)
	sourcetest.BenchReader[*gor.PayloadError](b, g, func(r io.Reader) (session.Source, error) { return gor.NewReader(r) })
}

func BenchmarkImportHAR(b *testing.B) {
	_, h, _ := benchFiles(b)
	sourcetest.BenchReader[*har.EntryError](b, h, func(r io.Reader) (session.Source, error) { return har.NewReader(r) })
}

func BenchmarkImportGorGzip(b *testing.B) {
	g, _, z := benchFiles(b)
	b.SetBytes(int64(len(g)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := gor.NewReader(bytes.NewReader(z))
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := sourcetest.Drain[*gor.PayloadError](b, r, 1<<24); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGunzipGor(b *testing.B) {
	g, _, z := benchFiles(b)
	b.SetBytes(int64(len(g)))
	b.ReportAllocs()
	for b.Loop() {
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, zr); err != nil || n != int64(len(g)) {
			b.Fatalf("gunzip: %d bytes, %v; want %d", n, err, len(g))
		}
	}
}
