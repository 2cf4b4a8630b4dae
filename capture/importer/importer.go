// Package importer reads the capture files users already have, GoReplay
// .gor and HAR (each gzip'd or not), as one stream of exchanges, telling
// each file's format from its content, never from its name.
//
// A Source is a session.Source, so it goes through the same one loop that
// writes every recording (identity, redaction, metadata), and replay,
// inspect and check can take these files on the fly.
package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/reprise-tool/reprise/capture/gor"
	"github.com/reprise-tool/reprise/capture/har"
	"github.com/reprise-tool/reprise/capture/internal/infile"
	"github.com/reprise-tool/reprise/session"
)

// Format is a kind of input file.
type Format string

// The formats Detect tells apart. Only FormatGor and FormatHAR are read
// here; the others are named so the error can say what to do instead.
const (
	FormatGor       Format = "gor"
	FormatHAR       Format = "har"
	FormatRecording Format = "rpz"
	FormatPcap      Format = "pcap"
)

// ErrUnknownFormat means a file is none of the formats Reprise imports.
var ErrUnknownFormat = errors.New("not a GoReplay (.gor) or HAR file")

// Detect tells the format of the content start (after gunzip), which
// should hold the file's first few hundred bytes.
func Detect(start []byte) (Format, error) {
	b := bytes.TrimPrefix(start, []byte("\xef\xbb\xbf"))
	switch {
	case bytes.HasPrefix(b, []byte{0x89, 'R', 'P', 'Z'}):
		return FormatRecording, nil
	case bytes.HasPrefix(b, []byte{0xd4, 0xc3, 0xb2, 0xa1}), bytes.HasPrefix(b, []byte{0xa1, 0xb2, 0xc3, 0xd4}),
		bytes.HasPrefix(b, []byte{0x4d, 0x3c, 0xb2, 0xa1}), bytes.HasPrefix(b, []byte{0xa1, 0xb2, 0x3c, 0x4d}),
		bytes.HasPrefix(b, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		return FormatPcap, nil
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) > 0 && b[0] == '{' {
		return FormatHAR, nil
	}
	// A GoReplay meta line: "1 ID TIMESTAMP ...".
	if len(b) > 2 && b[0] >= '1' && b[0] <= '3' && b[1] == ' ' {
		if f := bytes.Fields(b[:max(0, bytes.IndexByte(b, '\n'))]); len(f) >= 3 && isDigits(f[2]) {
			return FormatGor, nil
		}
	}
	return "", ErrUnknownFormat
}

func isDigits(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte{'-'})
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Options tune a Source.
type Options struct {
	// Hosts keeps only exchanges to these hosts (the URL's host in a HAR,
	// the Host field's in a .gor; without port, any case). Empty keeps all.
	Hosts []string
	// MaxBody caps the body bytes kept per message; 0 keeps none (headers
	// only). Capture's default is 1 MiB (gor.DefaultMaxBody).
	MaxBody int64
	// OnDamage, when set, is called with each damage report (see
	// IsDamage) and reading goes on, so a loop that stops at the first
	// error (capture.Record) still gets every good exchange. Without it,
	// Next returns the reports.
	OnDamage func(error)
}

// FileStats is what was read from one file.
type FileStats struct {
	Path   string     `json:"path"`
	Format Format     `json:"format"`
	Gor    *gor.Stats `json:"gor,omitempty"`
	HAR    *har.Stats `json:"har,omitempty"`
}

// reader is what both formats' readers provide.
type reader interface {
	session.Source
	Close() error
	NextConnID() uint64
}

// Source reads files one after another (in the order given, globs
// expanded), giving each file's exchanges connection IDs of their own.
// Damage is passed on as the readers report it (*gor.PayloadError,
// *har.EntryError): the consumer may go on past it. Source is not safe
// for concurrent use.
type Source struct {
	o      Options
	paths  []string
	cur    reader
	curIdx int
	nextID uint64
	stats  []FileStats
	hosts  map[string]bool

	mu       sync.Mutex // guards counters, read by Counters from any goroutine
	counters session.Counters
}

var _ session.Source = (*Source)(nil)

// Counters returns what was imported so far: exchanges, incomplete ones,
// connections, and the entries and requests left out as unsupported, by
// kind. It is safe to call from any goroutine (capture.Record reads it as
// a CounterSource).
func (s *Source) Counters() session.Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters
	c.Unsupported = maps.Clone(c.Unsupported)
	return c
}

func (s *Source) count(x *session.Exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters.Exchanges++
	if x.Index == 0 {
		s.counters.Connections++
	}
	if x.Flags.Incomplete() {
		s.counters.Incomplete++
	}
}

// countUnsupported adds what the file just read left out.
func (s *Source) countUnsupported(fs FileStats) {
	var m map[string]int64
	switch {
	case fs.Gor != nil:
		m = fs.Gor.Unsupported
	case fs.HAR != nil:
		m = fs.HAR.Unsupported
	}
	if len(m) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counters.Unsupported == nil {
		s.counters.Unsupported = map[string]uint64{}
	}
	for k, v := range m {
		s.counters.Unsupported[k] += uint64(v)
	}
}

// Open checks that every file named (or matched by a glob) is a .gor or
// HAR file and returns a Source that reads them in turn.
func Open(paths []string, o Options) (*Source, error) {
	files, err := session.ExpandPaths(paths...)
	if err != nil {
		return nil, err
	}
	o.MaxBody = max(o.MaxBody, 0)
	s := &Source{o: o, paths: files, curIdx: -1, nextID: 1}
	if len(o.Hosts) > 0 {
		s.hosts = map[string]bool{}
		for _, h := range o.Hosts {
			s.hosts[strings.ToLower(h)] = true
		}
	}
	for _, p := range files {
		f, err := FormatOf(p)
		if err != nil {
			return nil, err
		}
		s.stats = append(s.stats, FileStats{Path: p, Format: f})
	}
	return s, nil
}

// FormatOf tells the format of the file at path from its content.
func FormatOf(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	br, err := infile.Reader(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	start, _ := br.Peek(512)
	format, err := Detect(start)
	switch {
	case format == FormatRecording:
		return "", fmt.Errorf("%s: already a reprise recording; use it as it is", path)
	case format == FormatPcap:
		return "", fmt.Errorf("%s: a pcap file; import it with 'reprise capture --pcap'", path)
	case err != nil:
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return format, nil
}

// IsDamage reports whether err, from Next, is damage in one file (a
// *gor.PayloadError or *har.EntryError) after which reading goes on, as
// opposed to an error that ends the import. Broken JSON ends its HAR file,
// not the import: the next file is read.
func IsDamage(err error) bool {
	var pe *gor.PayloadError
	var ee *har.EntryError
	return errors.As(err, &pe) || errors.As(err, &ee)
}

// Paths returns the files read, in order.
func (s *Source) Paths() []string { return s.paths }

// Stats returns what was read from each file so far.
func (s *Source) Stats() []FileStats {
	out := append([]FileStats(nil), s.stats...)
	if s.cur != nil {
		s.fileStats(&out[s.curIdx])
	}
	return out
}

func (s *Source) fileStats(fs *FileStats) {
	switch r := s.cur.(type) {
	case *gor.Reader:
		st := r.Stats()
		fs.Gor = &st
	case *har.Reader:
		st := r.Stats()
		fs.HAR = &st
	}
}

// Next returns the next exchange, a damage report from the file being
// read, io.EOF after the last file, or an error opening a file.
func (s *Source) Next() (*session.Exchange, error) {
	for {
		if s.cur == nil {
			if s.curIdx+1 >= len(s.paths) {
				return nil, io.EOF
			}
			if err := s.open(s.curIdx + 1); err != nil {
				return nil, err
			}
		}
		x, err := s.cur.Next()
		if err == io.EOF {
			s.fileStats(&s.stats[s.curIdx])
			s.countUnsupported(s.stats[s.curIdx])
			s.nextID = s.cur.NextConnID()
			s.cur.Close()
			s.cur = nil
			continue
		}
		if err != nil && s.o.OnDamage != nil && IsDamage(err) {
			s.o.OnDamage(err)
			continue
		}
		if err != nil {
			return nil, err
		}
		if s.hosts != nil && s.stats[s.curIdx].Format == FormatGor && !s.hosts[hostOnly(x.Request.Header.Get("Host"))] {
			continue
		}
		s.count(x)
		return x, nil
	}
}

func (s *Source) open(i int) error {
	s.curIdx = i
	p := s.paths[i]
	var err error
	switch s.stats[i].Format {
	case FormatGor:
		s.cur, err = gor.Open(p, gor.MaxBody(s.o.MaxBody), gor.FirstConnID(s.nextID))
	default:
		opts := []har.Option{har.MaxBody(s.o.MaxBody), har.FirstConnID(s.nextID)}
		if len(s.o.Hosts) > 0 {
			opts = append(opts, har.Host(s.o.Hosts...))
		}
		s.cur, err = har.Open(p, opts...)
	}
	if err != nil {
		s.cur = nil
		return err
	}
	return nil
}

// Close closes the file being read.
func (s *Source) Close() error {
	if s.cur == nil {
		return nil
	}
	err := s.cur.Close()
	s.cur = nil
	return err
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}
