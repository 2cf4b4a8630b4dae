package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// The recording file layout; session/FORMAT.md is the full specification.
const (
	// Ext is the file name extension of a recording.
	Ext = ".rpz"

	// FormatMajor is the major format version this package writes. A reader
	// refuses a file with another major version, since its layout may differ.
	FormatMajor = 1
	// FormatMinor is the minor version this package writes. Minor versions
	// only add record kinds or append fields, which older readers skip.
	FormatMinor = 2

	headerSize      = 16
	blockHeaderSize = 32
	footerSize      = 24

	codecStored = 0 // the payload is the raw records
	codecZstd   = 1 // the payload is one zstd frame holding the raw records

	// MaxBlockSize bounds a block's raw (decompressed) and stored size. A
	// reader trusts no length above it, so a forged header cannot make it
	// allocate more.
	MaxBlockSize = 64 << 20

	// MaxBodyCap is the largest per-body cap a Writer accepts, so that every
	// record fits in a block.
	MaxBodyCap = 16 << 20

	// DefaultBodyCap is the per-body cap of a Writer with no BodyCap option.
	DefaultBodyCap = 1 << 20

	// DefaultBlockSize is the raw size at which a Writer closes a block.
	DefaultBlockSize = 4 << 20

	// LiveFlushInterval is the FlushInterval for live capture: a crash or
	// kill -9 loses at most this much traffic.
	LiveFlushInterval = time.Second
)

// Record kinds. A reader skips kinds it does not know, so new kinds can be
// added in a minor version.
const (
	KindMetadata RecordKind = 1 // Metadata as JSON
	KindExchange RecordKind = 2 // one Exchange, binary (FORMAT.md)
	KindTimeline RecordKind = 3 // one Timeline as JSON
	KindIndex    RecordKind = 4 // the trailer's Index as JSON
	KindConn     RecordKind = 5 // one ConnInfo, binary (FORMAT.md, 1.2)
)

// RecordKind says what a record inside a block holds.
type RecordKind uint64

var (
	fileMagic   = [8]byte{0x89, 'R', 'P', 'Z', '\r', '\n', 0x1a, '\n'}
	blockMagic  = [8]byte{0xc3, 'R', 'P', 'Z', 'B', 'L', 'K', 0x1a}
	footerMagic = [8]byte{0xc3, 'R', 'P', 'Z', 'E', 'N', 'D', 0x1a}

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// Sentinel errors. A *CorruptError wraps one of them; test with errors.Is.
var (
	// ErrNotRecording means the file does not start with the recording
	// magic bytes: it is not a .rpz file (a pcap or .gor file, perhaps).
	ErrNotRecording = errors.New("not a reprise recording (bad magic bytes): pcap files must be captured into a recording first")
	// ErrUnsupportedVersion means the file was written in a major format
	// version this reader does not know; a newer reprise can read it.
	ErrUnsupportedVersion = errors.New("unsupported recording format version")
	// ErrTruncated means the file ends inside a block: the writer was
	// killed or the disk filled before it finished. Everything before the
	// last complete block is intact.
	ErrTruncated = errors.New("recording truncated")
	// ErrChecksum means a block's bytes do not match its checksum: the file
	// was damaged on disk or in transit.
	ErrChecksum = errors.New("block checksum mismatch")
	// ErrBadBlock means a block's framing is invalid (bad sync marker,
	// impossible length, unknown codec): the reader searches for the next
	// good block.
	ErrBadBlock = errors.New("bad block framing")
	// ErrBadRecord means a block passed its checksum but a record inside
	// could not be decoded, which points at a writer bug; the rest of the
	// block is skipped.
	ErrBadRecord = errors.New("bad record")
	// ErrRecordTooLarge is returned by a Writer for an exchange whose
	// encoding would not fit in a block; lower the body cap.
	ErrRecordTooLarge = errors.New("record too large for a block")
	// ErrClosed is returned by a Writer used after Close.
	ErrClosed = errors.New("recording writer is closed")
)

// CorruptError reports damage in a recording: where it is, what is wrong,
// and what the reader skipped to get past it.
type CorruptError struct {
	Path   string // the file, or "" when reading an unnamed stream
	Offset int64  // byte offset of the damage from the start of the file
	// Skipped is how many bytes the reader passed over before the next good
	// block (or the end of the file).
	Skipped int64
	// Records is how many records the damaged blocks claimed to hold, when
	// their headers were readable; 0 when unknown.
	Records int
	Err     error // ErrTruncated, ErrChecksum, ErrBadBlock or ErrBadRecord, possibly wrapped
}

func (e *CorruptError) Error() string {
	name := e.Path
	if name == "" {
		name = "recording"
	}
	msg := fmt.Sprintf("%s: damaged at byte %d: %v", name, e.Offset, e.Err)
	if e.Skipped > 0 {
		msg += fmt.Sprintf(" (skipped %d bytes", e.Skipped)
		if e.Records > 0 {
			msg += fmt.Sprintf(", %d records lost", e.Records)
		}
		msg += ")"
	}
	return msg
}

func (e *CorruptError) Unwrap() error { return e.Err }

// VersionError reports a recording written in a major format version this
// reader does not support.
type VersionError struct {
	Path         string
	Major, Minor uint16 // the file's version
}

func (e *VersionError) Error() string {
	name := e.Path
	if name == "" {
		name = "recording"
	}
	return fmt.Sprintf("%s: format version %d.%d, but this reader supports %d.x: upgrade reprise to read it",
		name, e.Major, e.Minor, FormatMajor)
}

func (e *VersionError) Unwrap() error { return ErrUnsupportedVersion }

// fileHeader encodes the 16-byte file header.
func appendFileHeader(b []byte) []byte {
	b = append(b, fileMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, FormatMajor)
	b = binary.LittleEndian.AppendUint16(b, FormatMinor)
	return binary.LittleEndian.AppendUint32(b, 0) // flags, reserved
}

// blockHeader is the fixed header before every block's payload.
type blockHeader struct {
	payloadLen uint32
	rawLen     uint32
	records    uint32
	codec      uint8
	payloadCRC uint32
}

func (h *blockHeader) put(b []byte) {
	_ = b[blockHeaderSize-1]
	copy(b[0:8], blockMagic[:])
	binary.LittleEndian.PutUint32(b[8:], h.payloadLen)
	binary.LittleEndian.PutUint32(b[12:], h.rawLen)
	binary.LittleEndian.PutUint32(b[16:], h.records)
	b[20], b[21], b[22], b[23] = h.codec, 0, 0, 0
	binary.LittleEndian.PutUint32(b[24:], h.payloadCRC)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
}

// parse checks a block header that starts with blockMagic; it returns an
// error wrapping ErrBadBlock when the header's own checksum or limits fail.
func (h *blockHeader) parse(b []byte) error {
	if crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return fmt.Errorf("%w: header checksum mismatch", ErrBadBlock)
	}
	h.payloadLen = binary.LittleEndian.Uint32(b[8:])
	h.rawLen = binary.LittleEndian.Uint32(b[12:])
	h.records = binary.LittleEndian.Uint32(b[16:])
	h.codec = b[20]
	h.payloadCRC = binary.LittleEndian.Uint32(b[24:])
	switch {
	case h.payloadLen > MaxBlockSize || h.rawLen > MaxBlockSize:
		return fmt.Errorf("%w: block length %d/%d over the %d limit", ErrBadBlock, h.payloadLen, h.rawLen, MaxBlockSize)
	case h.codec != codecStored && h.codec != codecZstd:
		return fmt.Errorf("%w: unknown codec %d", ErrBadBlock, h.codec)
	case h.codec == codecStored && h.payloadLen != h.rawLen:
		return fmt.Errorf("%w: stored block lengths differ", ErrBadBlock)
	case uint64(h.records)*2 > uint64(h.rawLen):
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrBadBlock, h.records, h.rawLen)
	}
	return nil
}

func appendFooter(b []byte, indexOffset int64) []byte {
	start := len(b)
	b = append(b, footerMagic[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(indexOffset))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	return binary.LittleEndian.AppendUint32(b, 0)
}

// parseFooter returns the offset of the index block, or ok=false.
func parseFooter(b []byte) (int64, bool) {
	if len(b) < footerSize || [8]byte(b[:8]) != footerMagic {
		return 0, false
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return 0, false
	}
	off := binary.LittleEndian.Uint64(b[8:])
	if off > 1<<62 { // 0 means no index
		return 0, false
	}
	return int64(off), true
}
