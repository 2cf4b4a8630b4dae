package tlsdecrypt

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// pcapng block and secrets types (draft-tuexen-opsawg-pcapng §4.7).
const (
	blockSectionHeader            = 0x0A0D0D0A
	blockDecryptionSecrets        = 0x0000000A
	secretsTLSKeyLog              = 0x544c534b // "TLSK": an NSS key log
	byteOrderMagic         uint32 = 0x1A2B3C4D
	maxSecretsBlock               = 64 << 20
)

// ErrNotPcapng means the input does not start with a pcapng section header.
var ErrNotPcapng = errors.New("not a pcapng file")

// ReadPcapng adds the TLS key logs held in the Decryption Secrets Blocks of
// a pcapng stream (written by 'editcap --inject-secrets tls,FILE' or
// Wireshark) to the key log, and returns how many it read. Other blocks
// are skipped, with Seek when r can. name says where bad lines came from.
func (k *KeyLog) ReadPcapng(name string, r io.Reader) (int, error) {
	var hdr [12]byte
	var order binary.ByteOrder = binary.LittleEndian
	n, block := 0, 0
	for ; ; block++ {
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			if errors.Is(err, io.EOF) && block > 0 {
				return n, nil
			}
			if block == 0 {
				return n, fmt.Errorf("tlsdecrypt: %s: %w", name, ErrNotPcapng)
			}
			return n, fmt.Errorf("tlsdecrypt: %s: block %d: %w", name, block, err)
		}
		typ := binary.LittleEndian.Uint32(hdr[:4])
		if block == 0 && typ != blockSectionHeader {
			return n, fmt.Errorf("tlsdecrypt: %s: %w", name, ErrNotPcapng)
		}
		rest := 0
		if typ == blockSectionHeader {
			// Each section says its byte order in its header.
			if _, err := io.ReadFull(r, hdr[8:12]); err != nil {
				return n, fmt.Errorf("tlsdecrypt: %s: block %d: %w", name, block, err)
			}
			switch byteOrderMagic {
			case binary.LittleEndian.Uint32(hdr[8:]):
				order = binary.LittleEndian
			case binary.BigEndian.Uint32(hdr[8:]):
				order = binary.BigEndian
			default:
				return n, fmt.Errorf("tlsdecrypt: %s: block %d: %w", name, block, ErrNotPcapng)
			}
			rest = -4
		}
		typ = order.Uint32(hdr[:4])
		total := int64(order.Uint32(hdr[4:8]))
		if total < 12 || total%4 != 0 {
			return n, fmt.Errorf("tlsdecrypt: %s: block %d: bad length %d", name, block, total)
		}
		body := total - 8 + int64(rest)
		if typ != blockDecryptionSecrets || body > maxSecretsBlock {
			if err := skip(r, body); err != nil {
				return n, fmt.Errorf("tlsdecrypt: %s: block %d: %w", name, block, err)
			}
			continue
		}
		// Read rather than allocate what the header claims: a damaged
		// file may claim more than it holds.
		b, err := io.ReadAll(io.LimitReader(r, body))
		if err == nil && int64(len(b)) < body {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return n, fmt.Errorf("tlsdecrypt: %s: block %d: %w", name, block, err)
		}
		if len(b) < 8 {
			continue
		}
		st, sl := order.Uint32(b[:4]), int64(order.Uint32(b[4:8]))
		if st != secretsTLSKeyLog || sl > int64(len(b)-8) {
			continue
		}
		n++
		k.Read(fmt.Sprintf("%s secrets block %d", name, n), bytes.NewReader(b[8:8+sl]))
	}
}

func skip(r io.Reader, n int64) error {
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(n, io.SeekCurrent)
		return err
	}
	_, err := io.CopyN(io.Discard, r, n)
	return err
}

// AddPcapngFile reads the key logs of the pcapng file at path, plain or
// gzip-compressed, and returns how many Decryption Secrets Blocks it held.
// A classic pcap file holds none and is no error.
func (k *KeyLog) AddPcapngFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("tlsdecrypt: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("tlsdecrypt: %s: %w", path, err)
		}
		r = zr
	} else if magic, _ := br.Peek(4); !bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		return 0, nil
	} else {
		// Seek past packet blocks rather than read them.
		r = f
		f.Seek(0, io.SeekStart)
	}
	n, err := k.ReadPcapng(path, r)
	if errors.Is(err, ErrNotPcapng) {
		return n, nil
	}
	return n, err
}
