package session

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the seed corpora under testdata/fuzz")

// smallRecording is a valid recording of n small exchanges.
func smallRecording(tb testing.TB, n int, opts ...WriterOption) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Metadata{Source: "fuzz"}, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	c := newCorpus(uint64(n))
	for range n {
		ex := c.next()
		ex.Response.Body = ex.Response.Body[:min(len(ex.Response.Body), 200)]
		ex.Tokens = []TokenEvent{{Kind: TokenRefresh, Name: "a", Value: "b", Proactive: true}}
		ex.Warnings = []string{"w"}
		if err := w.WriteExchange(ex); err != nil {
			tb.Fatal(err)
		}
	}
	w.WriteTimeline(&Timeline{Key: "k", Events: []TimelineEvent{{At: 1}}})
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func readerSeeds(tb testing.TB) map[string][]byte {
	valid := smallRecording(tb, 3)
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 0xff
	return map[string][]byte{
		"valid":          valid,
		"stored-blocks":  smallRecording(tb, 2, Compression(1), BlockSize(4<<10)),
		"truncated":      valid[:len(valid)*2/3],
		"flipped":        flipped,
		"header-only":    appendFileHeader(nil),
		"no-index":       smallRecording(tb, 1, WithoutIndex()),
		"forged-lengths": append(appendFileHeader(nil), forgedBlock()...),
	}
}

// forgedBlock is a block header with a valid checksum that claims the
// largest lengths allowed, followed by almost nothing.
func forgedBlock() []byte {
	b := make([]byte, blockHeaderSize+4)
	h := blockHeader{payloadLen: MaxBlockSize, rawLen: MaxBlockSize, records: 1000, codec: codecZstd}
	h.put(b)
	return b
}

// FuzzReader feeds arbitrary files to the Reader and the trailer reader:
// they must never panic, never loop, and never allocate beyond the block
// limit whatever the lengths claim.
func FuzzReader(f *testing.F) {
	for _, b := range readerSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err == nil {
			var ex Exchange
			for i := 0; ; i++ {
				if i > len(data)+10 {
					t.Fatalf("more results than bytes: the reader loops")
				}
				err := r.Read(&ex)
				var ce *CorruptError
				if err == io.EOF || err != nil && !errors.As(err, &ce) {
					break
				}
			}
			st := r.Stats()
			if st.Bytes > int64(len(data)) {
				t.Fatalf("read %d bytes of %d", st.Bytes, len(data))
			}
		}
		readTrailer(bytes.NewReader(data), int64(len(data))) //nolint:errcheck // must not panic
	})
}

// FuzzExchangeRecord decodes arbitrary exchange records (past the block
// checksums FuzzReader rarely gets through): no panic, and whatever
// decodes re-encodes to the same exchange.
func FuzzExchangeRecord(f *testing.F) {
	c := newCorpus(1)
	for range 4 {
		f.Add(encodeExchange(nil, c.next(), 300))
	}
	f.Add(encodeExchange(nil, &Exchange{}, 0))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var ex Exchange
		if err := decodeExchange(rec, &ex); err != nil {
			return
		}
		again := encodeExchange(nil, &ex, MaxBodyCap)
		var ex2 Exchange
		if err := decodeExchange(again, &ex2); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(canonical(&ex), canonical(&ex2)) {
			t.Fatalf("round trip differs:\n%+v\n%+v", ex, ex2)
		}
	})
}

// TestFuzzSeeds keeps the committed seed corpus in step with the format
// (go test -run TestFuzzSeeds -update-fuzz-seeds rewrites it).
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	seeds := readerSeeds(t)
	if *updateSeeds {
		os.MkdirAll(dir, 0o755)
		for name, b := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name := range seeds {
		if _, err := os.Stat(filepath.Join(dir, "seed-"+name)); err != nil {
			t.Errorf("seed %s missing (run with -update-fuzz-seeds): %v", name, err)
		}
	}
}
