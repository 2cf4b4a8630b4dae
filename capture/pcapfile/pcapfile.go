// Package pcapfile reads packets from pcap and pcapng files, as written by
// tcpdump, tshark and Wireshark, plain or gzip-compressed. Several files
// (names or glob patterns) are merged into one stream in timestamp order,
// opening a file only when its packets are due, so rotated captures
// (tcpdump -C/-G) and captures of several interfaces both read right. It is
// pure Go and builds everywhere.
package pcapfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/gzip"

	"github.com/reprise-tool/reprise/session"
)

// FileError says which file, and where in it, could not be read. Packets
// before the damage have been delivered.
type FileError struct {
	Path string
	// Offset is how far into the (decompressed) file reading had got,
	// to within the reader's 4 KiB buffer.
	Offset int64
	Err    error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("pcapfile: %s at offset %d: %v", e.Path, e.Offset, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// ErrNotPcap means a file starts with neither a pcap nor a pcapng magic
// number (after gzip decompression).
var ErrNotPcap = errors.New("not a pcap or pcapng file (convert it with 'editcap -F pcap')")

// Source reads packets from one or more capture files. It implements
// capture.PacketSource: LinkType returns the link type of the packet just
// read, which may change from file to file or, in pcapng, from interface to
// interface.
//
// Packets returned by ZeroCopyReadPacketData stay valid until the next call;
// ReadPacketData returns a fresh copy.
type Source struct {
	files   []*file // not yet opened, by first packet time
	active  []*file // open, with a packet ready; a min-heap by time
	cur     *file   // the file of the packet just returned
	lt      layers.LinkType
	errs    []error
	started bool
}

// Open returns a source over the files named by paths; each may be a glob
// pattern. Every file is checked (opened and its first packet read) before
// Open returns, so a wrong path or format fails early with its name.
func Open(paths ...string) (*Source, error) {
	names, err := expand(paths)
	if err != nil {
		return nil, err
	}
	s := &Source{}
	for _, name := range names {
		f, err := openFile(name)
		if err != nil {
			s.closeAll()
			return nil, err
		}
		ok, err := f.advance()
		if err != nil {
			f.close()
			s.closeAll()
			return nil, err
		}
		f.close()
		if !ok {
			continue // no packets
		}
		f.first = f.ts
		s.files = append(s.files, f)
	}
	slices.SortStableFunc(s.files, func(a, b *file) int { return a.first.Compare(b.first) })
	return s, nil
}

// Files returns the paths the patterns matched, in order.
func Files(paths ...string) ([]string, error) { return expand(paths) }

func expand(paths []string) ([]string, error) {
	names, err := session.ExpandGlobs("file", paths...)
	if err != nil {
		return nil, fmt.Errorf("pcapfile: %w", err)
	}
	return names, nil
}

// LinkType returns the link type of the packet last read (before the first
// read: of the first file's first packet).
func (s *Source) LinkType() layers.LinkType {
	if s.cur == nil && len(s.files) > 0 {
		return s.files[0].lt
	}
	return s.lt
}

// ReadPacketData returns the next packet in a buffer of its own.
func (s *Source) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := s.ZeroCopyReadPacketData()
	if err != nil {
		return nil, ci, err
	}
	return append([]byte(nil), data...), ci, nil
}

// ZeroCopyReadPacketData returns the next packet in time order across the
// files; the data stays valid until the next call. After the last packet it
// returns io.EOF, or the errors of files that could not be read to the end.
func (s *Source) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if s.cur != nil {
		// Move the file of the previous packet to its next packet.
		f := s.cur
		s.cur = nil
		ok, err := f.advance()
		if err != nil {
			s.errs = append(s.errs, err)
		}
		if ok {
			s.push(f)
		} else {
			f.close()
		}
	}
	// Open files whose first packet is due.
	for len(s.files) > 0 && (len(s.active) == 0 || !s.active[0].ts.Before(s.files[0].first)) {
		f := s.files[0]
		s.files = s.files[1:]
		g, err := openFile(f.path)
		if err == nil {
			var ok bool
			ok, err = g.advance()
			if ok {
				s.push(g)
			} else {
				g.close()
			}
		}
		if err != nil {
			s.errs = append(s.errs, err)
		}
	}
	if len(s.active) == 0 {
		if len(s.errs) > 0 {
			err := errors.Join(s.errs...)
			s.errs = nil
			return nil, gopacket.CaptureInfo{}, err
		}
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	f := s.pop()
	s.cur = f
	s.lt = f.lt
	return f.data, f.ci, nil
}

// Close closes every open file.
func (s *Source) Close() error {
	s.closeAll()
	return nil
}

func (s *Source) closeAll() {
	for _, f := range s.active {
		f.close()
	}
	if s.cur != nil {
		s.cur.close()
	}
	s.active, s.cur, s.files = nil, nil, nil
}

func (s *Source) push(f *file) { s.active = session.HeapPush(s.active, f, earlier) }

func (s *Source) pop() (f *file) {
	f, s.active = session.HeapPop(s.active, earlier)
	return f
}

// earlier orders the open files by their next packet's time.
func earlier(a, b *file) bool { return a.ts.Before(b.ts) }

// file is one capture file being read, with its next packet ready.
type file struct {
	path  string
	osf   *os.File
	gz    *gzip.Reader
	cr    *countingReader
	pcap  *pcapgo.Reader
	ng    *pcapgo.NgReader
	first time.Time

	// the next packet, in the reader's buffer: a file is advanced only at
	// the call after the one that handed out its packet, so the packet
	// stays valid until the next call, as ZeroCopyReadPacketData promises,
	// without a copy
	data []byte
	ci   gopacket.CaptureInfo
	ts   time.Time
	lt   layers.LinkType
}

func openFile(path string) (*file, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pcapfile: %w", err)
	}
	f := &file{path: path, osf: osf}
	// One buffer between the file (or the gzip stream) and the pcap
	// reader: each layer more copies every byte once more.
	pr := bufio.NewReaderSize(osf, 256<<10)
	if magic, _ := pr.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		f.gz, err = gzip.NewReader(pr)
		if err != nil {
			f.close()
			return nil, &FileError{Path: path, Err: fmt.Errorf("gzip: %w", err)}
		}
		pr = bufio.NewReaderSize(f.gz, 256<<10)
	}
	magic, err := pr.Peek(4)
	if err != nil {
		f.close()
		if errors.Is(err, io.EOF) {
			return nil, &FileError{Path: path, Err: errors.New("empty file, not a capture")}
		}
		return nil, &FileError{Path: path, Err: err}
	}
	f.cr = &countingReader{r: pr}
	switch {
	case string(magic) == "\x0a\x0d\x0d\x0a":
		f.ng, err = pcapgo.NewNgReader(f.cr, pcapgo.DefaultNgReaderOptions)
	case isPcapMagic(magic):
		f.pcap, err = pcapgo.NewReader(f.cr)
	default:
		err = ErrNotPcap
	}
	if err != nil {
		f.close()
		return nil, &FileError{Path: path, Offset: 0, Err: err}
	}
	return f, nil
}

func isPcapMagic(m []byte) bool {
	switch string(m) {
	case "\xa1\xb2\xc3\xd4", "\xd4\xc3\xb2\xa1", "\xa1\xb2\x3c\x4d", "\x4d\x3c\xb2\xa1":
		return true
	}
	return false
}

// advance reads the next packet; ok is false at the end of the file.
func (f *file) advance() (ok bool, err error) {
	var data []byte
	var ci gopacket.CaptureInfo
	if f.ng != nil {
		data, ci, err = f.ng.ZeroCopyReadPacketData()
	} else {
		data, ci, err = f.pcap.ZeroCopyReadPacketData()
	}
	if err != nil {
		if err == io.EOF {
			return false, nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("file ends inside a packet (the capture was cut short); packets before it were read")
		}
		return false, &FileError{Path: f.path, Offset: f.cr.n, Err: err}
	}
	f.lt = f.linkType(ci)
	f.data, f.ci, f.ts = data, ci, ci.Timestamp
	return true, nil
}

func (f *file) linkType(ci gopacket.CaptureInfo) layers.LinkType {
	if f.ng == nil {
		return f.pcap.LinkType()
	}
	if iface, err := f.ng.Interface(ci.InterfaceIndex); err == nil {
		return iface.LinkType
	}
	return f.ng.LinkType()
}

func (f *file) close() {
	if f.gz != nil {
		f.gz.Close()
		f.gz = nil
	}
	if f.osf != nil {
		f.osf.Close()
		f.osf = nil
	}
}

// countingReader counts the bytes read through it, to name offsets in
// errors.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
