package session

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRotateBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "traffic.rpz")
	fw, err := Create(path, Metadata{Source: "test"}, RotateSize(64<<10), BlockSize(16<<10))
	if err != nil {
		t.Fatal(err)
	}
	c := newCorpus(3)
	const n = 600
	for i := range n {
		if err := fw.WriteExchange(c.next()); err != nil {
			t.Fatal(err)
		}
		fw.UpdateCounters(Counters{Exchanges: uint64(i + 1), PacketsSeen: uint64(10 * (i + 1))})
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	parts := fw.Paths()
	if len(parts) < 3 {
		t.Fatalf("wrote %d parts, want several", len(parts))
	}
	if parts[0] != filepath.Join(dir, "traffic.0001.rpz") {
		t.Errorf("first part is %s", parts[0])
	}
	// Each part reads alone, and the parts' counters add up to the run's.
	total, seen := 0, uint64(0)
	for _, p := range parts {
		total += countExchanges(t, p)
		_, m, err := ReadIndex(p)
		if err != nil {
			t.Fatal(err)
		}
		seen += m.Counters.PacketsSeen
	}
	if total != n {
		t.Errorf("parts hold %d exchanges, want %d", total, n)
	}
	if seen != 10*n {
		t.Errorf("parts' packets_seen add up to %d, want %d", seen, 10*n)
	}
	// A glob reads them back as one stream, in time order.
	r, err := Open(filepath.Join(dir, "traffic.*.rpz"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var last int64
	got, maxOpen := 0, 0
	for {
		open := 0
		for _, pt := range r.parts {
			if pt.f != nil {
				open++
			}
		}
		maxOpen = max(maxOpen, open)
		ex, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ex.Timing.RequestStart < last {
			t.Fatalf("exchange %d out of order", got)
		}
		last = ex.Timing.RequestStart
		got++
	}
	if got != n {
		t.Errorf("merged read gave %d exchanges, want %d", got, n)
	}
	// Parts with trailers open only when the merge reaches them and close
	// at their end, so memory does not grow with the number of parts.
	if maxOpen > 2 {
		t.Errorf("%d of %d parts were open at once, want at most 2", maxOpen, len(parts))
	}
	if st := r.Stats(); st.Exchanges != n || !st.Finished || st.Bytes == 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRotateByTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.rpz")
	fw, err := Create(path, Metadata{Source: "test"}, RotateEvery(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1767225600, 0)
	fw.now = func() time.Time { return clock }
	fw.started = clock
	c := newCorpus(4)
	for range 5 { // five exchanges, 40s apart: parts at 0, 80s, 160s
		if err := fw.WriteExchange(c.next()); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(40 * time.Second)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(fw.Paths()); got != 3 {
		t.Fatalf("wrote %d parts, want 3: %v", got, fw.Paths())
	}
	if n := countExchanges(t, fw.Paths()...); n != 5 {
		t.Errorf("read %d exchanges, want 5", n)
	}
}

// TestMergeOrder interleaves two files' timestamps and checks the merge.
func TestMergeOrder(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for f := range 2 {
		p := filepath.Join(dir, []string{"a.rpz", "b.rpz"}[f])
		fw, err := Create(p, Metadata{Source: p})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			ex := &Exchange{Index: i, Timing: Timing{RequestStart: int64(2*i + f)}}
			if err := fw.WriteExchange(ex); err != nil {
				t.Fatal(err)
			}
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	r, err := Open(paths[1], paths[0], paths[1]) // repeats are read once
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for want := int64(0); ; want++ {
		ex, err := r.Next()
		if err == io.EOF {
			if want != 200 {
				t.Fatalf("read %d exchanges, want 200", want)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ex.Timing.RequestStart != want {
			t.Fatalf("exchange %d has start %d", want, ex.Timing.RequestStart)
		}
	}
	if md := r.Metadata(); len(md) != 2 || md[0].Source != paths[1] {
		t.Errorf("metadata = %+v", md)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notRec := filepath.Join(dir, "x.pcap")
	os.WriteFile(notRec, []byte("\xd4\xc3\xb2\xa1 not a recording"), 0o644)
	future := filepath.Join(dir, "future.rpz")
	h := appendFileHeader(nil)
	h[8] = 9 // major version 9
	os.WriteFile(future, h, 0o644)
	tests := []struct {
		name  string
		paths []string
		is    error  // errors.Is target, or nil
		msg   string // part of the message
	}{
		{"nothing given", nil, nil, "no recording given"},                                           // the CLI needs a file
		{"glob without match", []string{filepath.Join(dir, "*.none")}, nil, "no recording matches"}, // say which pattern
		{"missing file", []string{filepath.Join(dir, "missing.rpz")}, os.ErrNotExist, "missing.rpz"},
		{"not a recording", []string{notRec}, ErrNotRecording, "x.pcap"},
		{"newer major version", []string{future}, ErrUnsupportedVersion, fmt.Sprintf("format version 9.%d, but this reader supports 1.x", FormatMinor)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.paths...)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestCopy(t *testing.T) {
	dir := t.TempDir()
	c := newCorpus(5)
	src := &SliceSource{}
	for range 50 {
		src.Exchanges = append(src.Exchanges, c.next())
	}
	first := filepath.Join(dir, "first.rpz")
	fw, err := Create(first, Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Copy(fw, src); n != 50 || err != nil {
		t.Fatalf("Copy = %d, %v", n, err)
	}
	fw.WriteTimeline(&Timeline{Key: "k"})
	fw.Close()
	// Recording to recording keeps exchanges and timelines.
	r, err := Open(first)
	if err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(dir, "second.rpz")
	fw2, _ := Create(second, Metadata{Source: "copy"})
	if n, err := Copy(fw2, r); n != 50 || err != nil {
		t.Fatalf("Copy = %d, %v", n, err)
	}
	r.Close()
	fw2.Close()
	r2, _ := Open(second)
	defer r2.Close()
	for {
		if _, err := r2.Next(); err != nil {
			break
		}
	}
	if len(r2.Timelines()) != 1 {
		t.Errorf("timelines not copied: %v", r2.Timelines())
	}
}
