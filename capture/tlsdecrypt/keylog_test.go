package tlsdecrypt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testRandom = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a"
	testMaster = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"
)

// TestKeylogLines checks every kind of line: good ones stored, bad ones
// counted and named by line number, none fatal.
func TestKeylogLines(t *testing.T) {
	in := strings.Join([]string{
		"# comment",
		"",
		"CLIENT_RANDOM " + testRandom[:64] + " " + testMaster, // 2: good
		"CLIENT_RANDOM " + testRandom[:64] + " abcd",          // 4: short master
		"CLIENT_RANDOM zz" + testRandom[2:64] + " " + testMaster,
		"NOT_A_LABEL " + testRandom[:64] + " 00",
		"garbage",
		"EXPORTER_SECRET " + testRandom[:64] + " 00", // known, not needed
		"SERVER_TRAFFIC_SECRET_0 " + testRandom[:64] + " 0g",
		"\x00\xff\xfe binary junk",
	}, "\r\n")
	k := NewKeyLog()
	if err := k.Read("keys.log", strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	st := k.Stats()
	var lines []int
	for _, b := range st.FirstBad {
		lines = append(lines, b.Line)
		if b.File != "keys.log" || b.Reason == "" {
			t.Errorf("bad line %v", b)
		}
	}
	if st.Connections != 1 || st.Bad != 6 || len(lines) != 6 || lines[0] != 4 || lines[5] != 10 {
		t.Errorf("stats %+v", st)
	}
	var r Random
	copy(r[:], mustHex(t, testRandom[:64]))
	if s, ok := k.lookup(r); !ok || len(s.master) != 48 {
		t.Errorf("lookup: %v %v", s, ok)
	}
}

// TestKeylogTail checks a growing file is read as it grows, a line cut in
// the middle only once its newline arrives.
func TestKeylogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.log")
	line := "CLIENT_RANDOM " + testRandom[:64] + " " + testMaster + "\n"
	if err := os.WriteFile(path, []byte(line[:30]), 0o600); err != nil {
		t.Fatal(err)
	}
	k := NewKeyLog()
	if err := k.AddFile(path); err != nil {
		t.Fatal(err)
	}
	if st := k.Stats(); st.Connections != 0 || st.Bad != 0 {
		t.Fatalf("half a line: %+v", st)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(line[30:] + "junk\n")
	f.Close()
	if err := k.Refresh(); err != nil {
		t.Fatal(err)
	}
	if st := k.Stats(); st.Connections != 1 || st.Bad != 1 || st.FirstBad[0].Line != 2 {
		t.Errorf("after growing: %+v", st)
	}
	if !k.Follows() {
		t.Error("Follows = false")
	}
}

// pcapngBlock builds one pcapng block.
func pcapngBlock(order appendOrder, typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	b := order.AppendUint32(nil, typ)
	b = order.AppendUint32(b, uint32(12+len(body)))
	b = append(b, body...)
	return order.AppendUint32(b, uint32(12+len(body)))
}

// TestKeylogPcapng checks Decryption Secrets Blocks are read from pcapng
// files of either byte order, other blocks skipped.
func TestKeylogPcapng(t *testing.T) {
	for _, order := range []appendOrder{binary.LittleEndian, binary.BigEndian} {
		shb := order.AppendUint32(nil, byteOrderMagic)
		shb = append(shb, 1, 0, 0, 0)
		shb = append(shb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		if order == appendOrder(binary.BigEndian) {
			shb[4], shb[5], shb[6], shb[7] = 0, 1, 0, 0
		}
		secrets := []byte("CLIENT_RANDOM " + testRandom[:64] + " " + testMaster + "\n")
		dsb := order.AppendUint32(nil, secretsTLSKeyLog)
		dsb = order.AppendUint32(dsb, uint32(len(secrets)))
		dsb = append(dsb, secrets...)
		var file []byte
		file = append(file, pcapngBlock(order, blockSectionHeader, shb)...)
		file = append(file, pcapngBlock(order, 1, make([]byte, 8))...) // an interface
		file = append(file, pcapngBlock(order, blockDecryptionSecrets, dsb)...)
		file = append(file, pcapngBlock(order, 6, make([]byte, 40))...) // a packet
		k := NewKeyLog()
		n, err := k.ReadPcapng("x.pcapng", bytes.NewReader(file))
		if err != nil || n != 1 || k.Stats().Connections != 1 {
			t.Errorf("%v: n %d err %v stats %+v", order, n, err, k.Stats())
		}
	}
	if _, err := NewKeyLog().ReadPcapng("x.pcap", bytes.NewReader([]byte("\xd4\xc3\xb2\xa1 classic pcap"))); !errors.Is(err, ErrNotPcapng) {
		t.Errorf("classic pcap: %v", err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			default:
				t.Fatalf("not hex: %q", s)
			}
		}
		b[i] = v
	}
	return b
}

// appendOrder is a byte order that appends.
type appendOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}
