package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// damageFixture is a recording of n exchanges in small blocks, with the
// block map from its index, so tests can aim damage at a block.
type damageFixture struct {
	file   []byte
	blocks []BlockRef // blocks holding exchanges, in order
	n      int
}

func newDamageFixture(t *testing.T, n int) *damageFixture {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Metadata{Source: "test"}, BlockSize(16<<10))
	if err != nil {
		t.Fatal(err)
	}
	c := newCorpus(11)
	for i := range n {
		ex := c.next()
		ex.Index = i // the exchange's number, to see what came back
		if err := w.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	r := closeAndRead(t, w, &buf)
	for {
		if _, err := r.Next(); err != nil {
			break
		}
	}
	f := &damageFixture{file: buf.Bytes(), n: n}
	for _, b := range r.Index().Blocks {
		if b.First != 0 {
			f.blocks = append(f.blocks, b)
		}
	}
	if len(f.blocks) < 10 {
		t.Fatalf("fixture has %d blocks, want at least 10", len(f.blocks))
	}
	return f
}

// firstIndex returns the number of the first exchange in block i.
func (f *damageFixture) firstIndex(i int) int {
	n := 0
	for _, b := range f.blocks[:i] {
		n += b.Records
	}
	return n
}

// readAll reads b, passing over damage, and returns the exchange numbers
// read and the damage reports in the order Next returned them.
func readAll(t *testing.T, b []byte) ([]int, []*CorruptError, *Reader) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), WithPath("damaged.rpz"))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	var errs []*CorruptError
	for i := 0; i < 1_000_000; i++ {
		ex, err := r.Next()
		if err == io.EOF {
			return got, errs, r
		}
		var ce *CorruptError
		if errors.As(err, &ce) {
			errs = append(errs, ce)
			continue
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		got = append(got, ex.Index)
	}
	t.Fatal("the reader did not reach the end")
	return nil, nil, nil
}

func TestCorruption(t *testing.T) {
	f := newDamageFixture(t, 1500)
	mid := len(f.blocks) / 2
	blk := f.blocks[mid]
	next := f.blocks[mid+1]
	tests := []struct {
		name    string
		mutate  func([]byte) []byte
		lost    [2]int // exchange numbers [from, to) that must be missing
		offset  int64  // offset the (first) error must name
		is      error  // the sentinel the error wraps
		reports int    // damage reports expected
		// unknownLoss: the damaged headers are unreadable, so the reader
		// cannot count the lost records.
		unknownLoss bool
	}{
		// Bytes flipped inside one block's payload: only that block is lost,
		// and the error names the block's offset.
		{
			name: "flipped payload bytes",
			mutate: func(b []byte) []byte {
				p := blk.Offset + blockHeaderSize + 100
				b[p] ^= 0xff
				b[p+1] ^= 0x55
				return b
			},
			lost: [2]int{f.firstIndex(mid), f.firstIndex(mid + 1)}, offset: blk.Offset, is: ErrChecksum, reports: 1,
		},
		// A forged length in a block header: the header checksum catches it
		// and the reader scans for the next sync marker.
		{
			name: "forged block length",
			mutate: func(b []byte) []byte {
				b[blk.Offset+8] ^= 0x40
				return b
			},
			lost: [2]int{f.firstIndex(mid), f.firstIndex(mid + 1)}, offset: blk.Offset, is: ErrBadBlock, reports: 1, unknownLoss: true,
		},
		// A run of zeros across two whole blocks: one damaged region.
		{
			name: "zeroed region",
			mutate: func(b []byte) []byte {
				end := f.blocks[mid+2].Offset - 10
				for i := blk.Offset + 5; i < end; i++ {
					b[i] = 0
				}
				return b
			},
			lost: [2]int{f.firstIndex(mid), f.firstIndex(mid + 2)}, offset: blk.Offset, is: ErrBadBlock, reports: 1, unknownLoss: true,
		},
		// Junk inserted between two blocks is skipped; nothing is lost.
		{
			name: "junk between blocks",
			mutate: func(b []byte) []byte {
				junk := []byte(strings.Repeat("junk\xc3RPZ", 100))
				return append(b[:next.Offset:next.Offset], append(junk, b[next.Offset:]...)...)
			},
			lost: [2]int{0, 0}, offset: next.Offset, is: ErrBadBlock, reports: 1,
		},
		// Bytes removed from the middle of a block: that block is lost and
		// the reader finds the next one despite the shifted offsets.
		{
			name: "bytes cut out",
			mutate: func(b []byte) []byte {
				p := blk.Offset + 200
				return append(b[:p:p], b[p+300:]...)
			},
			lost: [2]int{f.firstIndex(mid), f.firstIndex(mid + 1)}, offset: blk.Offset, is: ErrChecksum, reports: 1,
		},
		// The file cut in the middle of a block: what came before is read,
		// then a truncation error at the torn block.
		{
			name: "torn tail",
			mutate: func(b []byte) []byte {
				return b[:blk.Offset+blockHeaderSize+50]
			},
			lost: [2]int{f.firstIndex(mid), f.n}, offset: blk.Offset, is: ErrTruncated, reports: 1,
		},
		// The file cut exactly between blocks: no footer, so the reader
		// says the writer did not finish, at the end offset.
		{
			name: "cut at a block boundary",
			mutate: func(b []byte) []byte {
				return b[:blk.Offset]
			},
			lost: [2]int{f.firstIndex(mid), f.n}, offset: blk.Offset, is: ErrTruncated, reports: 1,
		},
		// A damaged footer: every exchange is still there.
		{
			name: "damaged footer",
			mutate: func(b []byte) []byte {
				b[len(b)-10] ^= 1
				return b
			},
			lost: [2]int{0, 0}, offset: int64(len(f.file) - footerSize), is: ErrBadBlock, reports: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mutate(bytes.Clone(f.file))
			got, errs, r := readAll(t, b)
			if len(errs) != tt.reports {
				t.Fatalf("got %d damage reports, want %d: %v", len(errs), tt.reports, errs)
			}
			ce := errs[0]
			if ce.Offset != tt.offset {
				t.Errorf("error names offset %d, want %d: %v", ce.Offset, tt.offset, ce)
			}
			if !errors.Is(ce, tt.is) {
				t.Errorf("error %v does not wrap %v", ce, tt.is)
			}
			msg := ce.Error()
			if !strings.Contains(msg, "damaged.rpz") || !strings.Contains(msg, fmt.Sprint(tt.offset)) {
				t.Errorf("message %q does not name the file and offset", msg)
			}
			// Every exchange outside the lost range comes back, in order.
			var want []int
			for i := range f.n {
				if i < tt.lost[0] || i >= tt.lost[1] {
					want = append(want, i)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("read %d exchanges, want %d (lost [%d,%d))", len(got), len(want), tt.lost[0], tt.lost[1])
			}
			st := r.Stats()
			if st.Damaged != int64(tt.reports) || len(r.Damage()) != tt.reports {
				t.Errorf("stats = %+v", st)
			}
			if lost := tt.lost[1] - tt.lost[0]; lost > 0 && !tt.unknownLoss && tt.name != "cut at a block boundary" && st.LostRecords == 0 {
				t.Errorf("stats count no lost records: %+v", st)
			}
		})
	}
}

// TestDamageBeforeFirstExchange damages the metadata block: the exchanges
// all come back and the first Next reports the damage.
func TestDamageBeforeFirstExchange(t *testing.T) {
	f := newDamageFixture(t, 300)
	b := bytes.Clone(f.file)
	b[headerSize+blockHeaderSize+3] ^= 0xff // in the metadata block's payload
	got, errs, _ := readAll(t, b)
	if len(got) != f.n || len(errs) != 1 || errs[0].Offset != headerSize {
		t.Fatalf("read %d exchanges, errors %v", len(got), errs)
	}
}
