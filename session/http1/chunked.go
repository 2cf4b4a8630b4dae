package http1

import (
	"bufio"
	"io"
)

// ParseChunkSize parses a chunk-size line (with or without its line
// ending): hexadecimal digits, then optional whitespace and extensions
// after ';', which are ignored (RFC 9112 section 7.1.1).
func ParseChunkSize[S text](line S) (int64, error) {
	line = TrimEOL(line)
	if i := indexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if len(line) == 0 {
		return 0, ErrBadChunk
	}
	var n int64
	for i := 0; i < len(line); i++ {
		b := line[i]
		var v byte
		switch {
		case b >= '0' && b <= '9':
			v = b - '0'
		case b >= 'a' && b <= 'f':
			v = b - 'a' + 10
		case b >= 'A' && b <= 'F':
			v = b - 'A' + 10
		default:
			return 0, ErrBadChunk
		}
		if n>>59 != 0 {
			return 0, ErrBadChunk // past int64
		}
		n = n<<4 | int64(v)
	}
	return n, nil
}

// ReadLine returns r's next line without its line ending (CRLF or a bare
// LF). The slice is r's buffer, valid until the next read. A line longer
// than the buffer is ErrLineTooLong; the end of input before a line ends
// is io.ErrUnexpectedEOF, or io.EOF when nothing at all was read.
func ReadLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, ErrLineTooLong
	case err == io.EOF && len(line) > 0:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	return TrimEOL(line), nil
}

// maxTrailer bounds the trailer fields read after the last chunk.
const maxTrailer = 1000

// ChunkedReader reads a chunked body from a bufio.Reader and returns its
// data, then reads the trailer section: at io.EOF the whole message has
// been consumed. It is a value to embed and Reset per message, so reading
// a chunked body allocates nothing. OnChunk, when set, is told each
// chunk's size as its line is read (the last, 0); OnTrailer each trailer
// line.
type ChunkedReader struct {
	r         *bufio.Reader
	left      int64 // bytes of the current chunk still to read
	started   bool
	done      bool
	err       error
	OnChunk   func(size int64)
	OnTrailer func(line []byte)
}

// NewChunkedReader returns a reader of the chunked body that follows in r.
func NewChunkedReader(r *bufio.Reader) *ChunkedReader {
	c := new(ChunkedReader)
	c.Reset(r)
	return c
}

// Reset makes c read a new chunked body from r, keeping its callbacks.
func (c *ChunkedReader) Reset(r *bufio.Reader) {
	*c = ChunkedReader{r: r, OnChunk: c.OnChunk, OnTrailer: c.OnTrailer}
}

func (c *ChunkedReader) Read(p []byte) (int, error) {
	for c.err == nil && c.left == 0 {
		c.err = c.next()
	}
	if c.err != nil {
		return 0, c.err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.err = err
		return n, err
	}
	return n, nil
}

// next reads the line ending after a chunk's data (but the first), the
// next chunk-size line, and at the last chunk the trailer section.
func (c *ChunkedReader) next() error {
	if c.done {
		return io.EOF
	}
	if c.started {
		line, err := ReadLine(c.r)
		if err != nil {
			return unexpected(err)
		}
		if len(line) != 0 {
			return ErrBadChunk
		}
	}
	c.started = true
	line, err := ReadLine(c.r)
	if err != nil {
		return unexpected(err)
	}
	size, err := ParseChunkSize(line)
	if err != nil {
		return err
	}
	if c.OnChunk != nil {
		c.OnChunk(size)
	}
	if size > 0 {
		c.left = size
		return nil
	}
	c.done = true
	if err := ReadTrailer(c.r, c.OnTrailer); err != nil {
		return err
	}
	return io.EOF
}

// ReadTrailer reads a trailer section up to its empty line, giving each
// line (without its line ending) to keep when it is not nil.
func ReadTrailer(r *bufio.Reader, keep func(line []byte)) error {
	for i := 0; ; i++ {
		line, err := ReadLine(r)
		if err != nil {
			return unexpected(err)
		}
		if len(line) == 0 {
			return nil
		}
		if i == maxTrailer {
			return ErrLineTooLong
		}
		if keep != nil {
			keep(line)
		}
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
