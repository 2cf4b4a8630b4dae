package session

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

// The benchmarks run on one generated corpus, written two ways: as a
// recording, and in GoReplay's text form compressed by gzip at level 6 (what
// a .gor.gz file is). b.SetBytes counts raw HTTP bytes (request and response
// as they were on the wire), so MB/s figures compare directly. Run:
//
//	go test ./session -run '^$' -bench . -benchtime 20x -cpu 1

const benchExchanges = 4000

// benchCorpus generates the corpus afresh (about 20 MB), so that nothing
// keeps it alive after the benchmark that uses it: the memory benchmark
// must see the reader's heap alone.
func benchCorpus() ([]*Exchange, int64) { return genCorpus(false) }

// genCorpus generates the benchmark corpus; unique makes every body fresh.
func genCorpus(unique bool) ([]*Exchange, int64) {
	c := newCorpus(42)
	c.unique = unique
	exs := make([]*Exchange, benchExchanges)
	var raw int64
	for i := range exs {
		exs[i] = c.next()
		raw += rawSize(exs[i])
	}
	return exs, raw
}

// writeGor writes exs the way GoReplay's file output does: a payload
// header line, the raw HTTP message, and the separator line.
func writeGor(w io.Writer, exs []*Exchange) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	for i, ex := range exs {
		id := strconv.Itoa(i)
		line = fmt.Appendf(line[:0], "1 %s%032x %d 0\n", id, i, ex.Timing.RequestStart)
		line = appendHTTPRequest(line, ex)
		line = append(line, "\n\U0001F435\U0001F648\U0001F649\n"...)
		line = fmt.Appendf(line, "2 %s%032x %d %d\n", id, i, ex.Timing.ResponseStart, ex.Timing.Latency())
		line = appendHTTPResponse(line, ex)
		line = append(line, "\n\U0001F435\U0001F648\U0001F649\n"...)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func appendHTTPRequest(b []byte, ex *Exchange) []byte {
	b = append(b, ex.Request.Method...)
	b = append(b, ' ')
	b = append(b, ex.Request.Target...)
	b = append(b, ' ')
	b = append(b, ex.Request.Proto...)
	b = append(b, "\r\n"...)
	b = appendHeaders(b, ex.Request.Header)
	return append(b, ex.Request.Body...)
}

func appendHTTPResponse(b []byte, ex *Exchange) []byte {
	b = append(b, ex.Response.Proto...)
	b = fmt.Appendf(b, " %d %s\r\n", ex.Response.Status, ex.Response.Reason)
	b = appendHeaders(b, ex.Response.Header)
	return append(b, ex.Response.Body...)
}

func appendHeaders(b []byte, h Headers) []byte {
	for _, f := range h {
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

func writeRecording(w io.Writer, exs []*Exchange) error {
	rw, err := NewWriter(w, Metadata{Source: "bench"})
	if err != nil {
		return err
	}
	for _, ex := range exs {
		if err := rw.WriteExchange(ex); err != nil {
			return err
		}
	}
	return rw.Close()
}

func writeGzipGor(w io.Writer, exs []*Exchange) error {
	zw, err := gzip.NewWriterLevel(w, 6)
	if err != nil {
		return err
	}
	if err := writeGor(zw, exs); err != nil {
		return err
	}
	return zw.Close()
}

// cpuMeter reports raw MB per CPU-second of the benchmark loop next to
// the wall-clock MB/s, since on a shared machine other processes' load
// lowers the latter but not the former.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{testkit.CPUTime()} }

func (c cpuMeter) report(b *testing.B, raw int64) {
	used := testkit.CPUTime() - c.start
	if used <= 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(raw)*float64(b.N)/used.Seconds()/1e6, "MB/cpu-s")
}

// countingWriter counts bytes and drops them, so writing benchmarks measure
// encoding, not memory copies into a growing buffer.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkWrite writes the corpus in both forms. corpus=api is the
// realistic one (a catalogue served again and again, tokens reused);
// corpus=unique makes every body fresh, the worst case for the recording's
// long compression window.
func BenchmarkWrite(b *testing.B) {
	for _, unique := range []bool{false, true} {
		name := "corpus=api"
		if unique {
			name = "corpus=unique"
		}
		b.Run(name, func(b *testing.B) { benchmarkWrite(b, unique) })
	}
}

func benchmarkWrite(b *testing.B, unique bool) {
	exs, raw := genCorpus(unique)
	// The recording writer is reused with Reset, as the rotating writer
	// does, so allocations show the steady state.
	var rw *Writer
	reuse := func(w io.Writer, exs []*Exchange) error {
		var err error
		if rw == nil {
			rw, err = NewWriter(w, Metadata{Source: "bench"})
		} else {
			err = rw.Reset(w, Metadata{Source: "bench"})
		}
		if err != nil {
			return err
		}
		for _, ex := range exs {
			if err := rw.WriteExchange(ex); err != nil {
				return err
			}
		}
		return rw.Close()
	}
	for _, bc := range []struct {
		name  string
		write func(io.Writer, []*Exchange) error
	}{
		{"format=rpz", reuse},
		{"format=gor.gz", writeGzipGor},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(raw)
			b.ReportAllocs()
			var cw countingWriter
			cpu := startCPU()
			for b.Loop() {
				cw.n = 0
				if err := bc.write(&cw, exs); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, raw)
			b.ReportMetric(float64(raw)/float64(cw.n), "ratio")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	exs, raw := benchCorpus()
	var rpz, gor bytes.Buffer
	if err := writeRecording(&rpz, exs); err != nil {
		b.Fatal(err)
	}
	if err := writeGzipGor(&gor, exs); err != nil {
		b.Fatal(err)
	}
	b.Run("format=rpz/Read", func(b *testing.B) {
		b.SetBytes(raw)
		b.ReportAllocs()
		var ex Exchange
		cpu := startCPU()
		defer cpu.report(b, raw)
		for b.Loop() {
			r, err := NewReader(bytes.NewReader(rpz.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for ; ; n++ {
				if err := r.Read(&ex); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
			if n != len(exs) {
				b.Fatalf("read %d exchanges, want %d", n, len(exs))
			}
		}
	})
	b.Run("format=rpz/Next", func(b *testing.B) {
		b.SetBytes(raw)
		b.ReportAllocs()
		cpu := startCPU()
		defer cpu.report(b, raw)
		for b.Loop() {
			r, err := NewReader(bytes.NewReader(rpz.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := r.Next(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	// gunzip alone, without parsing HTTP: a lower bound on reading .gor.gz.
	b.Run("format=gor.gz/gunzip", func(b *testing.B) {
		b.SetBytes(raw)
		b.ReportAllocs()
		cpu := startCPU()
		defer cpu.report(b, raw)
		for b.Loop() {
			zr, err := gzip.NewReader(bytes.NewReader(gor.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, zr); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReaderMemory writes recordings of growing length to disk and
// reports the reader's peak heap while reading each: it stays flat.
func BenchmarkReaderMemory(b *testing.B) {
	for _, copies := range []int{4, 40} {
		path := filepath.Join(b.TempDir(), "big.rpz")
		raw := writeBig(b, path, copies)
		b.Run(fmt.Sprintf("raw=%dMB", raw>>20), func(b *testing.B) {
			b.SetBytes(raw)
			b.ReportAllocs()
			var peak, live uint64
			for b.Loop() {
				p, l := readPeakHeap(b, path)
				peak, live = max(peak, p), max(live, l)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(live)/(1<<20), "live-heap-MiB")
		})
	}
}

// writeBig writes copies of the benchmark corpus, shifted in time, to path
// and returns the raw bytes written; the corpus is garbage afterwards.
func writeBig(b *testing.B, path string, copies int) int64 {
	exs, raw := benchCorpus()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, Metadata{Source: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	shift := exs[len(exs)-1].Timing.RequestStart - exs[0].Timing.RequestStart + 1
	for i := range copies {
		for _, ex := range exs {
			e := *ex
			e.Timing.RequestStart += int64(i) * shift
			if err := w.WriteExchange(&e); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return int64(copies) * raw
}

// readPeakHeap reads the file at path and returns the largest heap seen
// (HeapAlloc, garbage included, sampled every 256 exchanges) and the
// largest live heap (after a forced GC every 8192 exchanges), both above
// what was allocated before the reader was opened.
func readPeakHeap(tb testing.TB, path string) (peak, live uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	r, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	var ex Exchange
	for n := 1; ; n++ {
		err := r.Read(&ex)
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		if n%256 == 0 {
			if n%8192 == 0 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				live = max(live, ms.HeapAlloc-min(base, ms.HeapAlloc))
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc-min(base, ms.HeapAlloc))
		}
	}
	return peak, live
}
