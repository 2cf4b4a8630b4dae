package wire

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// lines keeps every field as a name: value line.
type lines []string

func (l *lines) keep([]byte) bool         { return true }
func (l *lines) field(name, value []byte) { *l = append(*l, string(name)+": "+string(value)) }

// statusOnly keeps :status alone.
type statusOnly int

func (s *statusOnly) keep(name []byte) bool { return string(name) == ":status" }
func (s *statusOnly) field(_, value []byte) { *s = statusOnly(h2Status(value)) }

// hpackFields decodes block with d into name: value lines.
func hpackFields(d *hpackReader, block []byte) ([]string, error) {
	var out lines
	err := d.decode(block, &out)
	return out, err
}

// xnetFields decodes block with x/net's decoder under a dynamic table of
// size 0, the client's advertised size.
func xnetFields(block []byte) ([]string, error) {
	fs, err := hpack.NewDecoder(0, nil).DecodeFull(block)
	var out []string
	for _, f := range fs {
		out = append(out, f.Name+": "+f.Value)
	}
	return out, err
}

// encodeBlock encodes fields as a server whose table was set to 0 does
// (a size update first), plus as nginx does, with incremental indexing
// that a table of size 0 does not keep.
func encodeBlock(t testing.TB, fields ...hpack.HeaderField) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	enc.SetMaxDynamicTableSizeLimit(0)
	enc.SetMaxDynamicTableSize(0)
	for _, f := range fields {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func TestHPACKReader(t *testing.T) {
	// nginx's response block, as it sends it (every literal indexed).
	nginx := []byte{0x88, 0x76, 0x89, 0xaa, 0x63, 0x55, 0xe5, 0x80, 0xae, 0x21, 0x2e, 0x1f, 0x61, 0x96, 0xd0, 0x7a, 0xbe, 0x94, 0x03, 0xaa,
		0x5f, 0x29, 0x14, 0x10, 0x04, 0xe2, 0x80, 0x15, 0xc6, 0xc3, 0x70, 0x0f, 0xa9, 0x8b, 0x46, 0xff, 0x5f, 0x87, 0x49, 0x7c, 0xa5, 0x8a, 0xe8, 0x19, 0xaa, 0x5c, 0x01, 0x33}
	tests := []struct {
		name  string
		block []byte
		want  []string
		err   bool
	}{
		{"nginx", nginx, []string{":status: 200", "server: nginx/1.22.1", "date: Mon, 07 Dec 2026 02:51:09 GMT", "content-type: text/plain", "content-length: 3"}, false},
		{"encoder with table 0", encodeBlock(t, hpack.HeaderField{Name: ":status", Value: "404"}, hpack.HeaderField{Name: "x-custom", Value: "v"},
			hpack.HeaderField{Name: "grpc-status", Value: "5", Sensitive: true}), []string{":status: 404", "x-custom: v", "grpc-status: 5"}, false},
		{"empty", nil, nil, false},
		{"dynamic index", []byte{0xbe}, nil, true},
		{"index 0", []byte{0x80}, nil, true},
		{"size update above 0", []byte{0x3f, 0xe1, 0x1f}, nil, true},
		{"size update to 0", []byte{0x20, 0x88}, []string{":status: 200"}, false},
		{"truncated string", []byte{0x5c, 0x05, 0x33}, nil, true},
		{"truncated integer", []byte{0xff, 0x80}, nil, true},
		{"bad huffman", []byte{0x5c, 0x81, 0x00}, nil, true},
	}
	var d hpackReader
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hpackFields(&d, tc.block)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if err != nil {
				if !errors.Is(err, errHPACK) && !errors.Is(err, hpack.ErrInvalidHuffman) {
					t.Errorf("error %v is not errHPACK", err)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("fields %q, want %q", got, tc.want)
			}
			if x, xerr := xnetFields(tc.block); xerr != nil || !slices.Equal(x, got) {
				t.Errorf("x/net decodes %q (%v)", x, xerr)
			}
		})
	}
}

// TestHPACKReaderAllocs: a response's fields cost no allocation when
// the stream keeps none of them.
func TestHPACKReaderAllocs(t *testing.T) {
	block := encodeBlock(t, hpack.HeaderField{Name: ":status", Value: "200"}, hpack.HeaderField{Name: "server", Value: "nginx/1.22.1"},
		hpack.HeaderField{Name: "date", Value: "Mon, 07 Dec 2026 02:51:09 GMT"}, hpack.HeaderField{Name: "x-request-id", Value: "abc"})
	var d hpackReader
	var status statusOnly
	if n := testing.AllocsPerRun(100, func() { _ = d.decode(block, &status) }); n != 0 || status != 200 {
		t.Errorf("%v allocations per block, status %d", n, status)
	}
}

// FuzzHPACKReader holds the reader to x/net's decoder under a table of
// size 0: what one decodes the other decodes alike, and what one refuses
// the other refuses.
func FuzzHPACKReader(f *testing.F) {
	f.Add([]byte{0x88, 0x76, 0x89, 0xaa, 0x63, 0x55, 0xe5, 0x80, 0xae, 0x21, 0x2e, 0x1f})
	f.Add(encodeBlock(f, hpack.HeaderField{Name: ":status", Value: "200"}, hpack.HeaderField{Name: "grpc-message", Value: "ünïcode"}))
	f.Add([]byte{0x20, 0x00, 0x01, 0x61, 0x01, 0x62, 0x10, 0x81, 0x1f, 0x00})
	f.Fuzz(func(t *testing.T, block []byte) {
		var d hpackReader
		got, err := hpackFields(&d, block)
		want, xerr := xnetFields(block)
		if (err != nil) != (xerr != nil) {
			t.Fatalf("reader %q, %v; x/net %q, %v", got, err, want, xerr)
		}
		if err == nil && !slices.Equal(got, want) {
			t.Fatalf("reader %q; x/net %q", got, want)
		}
	})
}
