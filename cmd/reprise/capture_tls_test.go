package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

const (
	tlsFixture     = "../../capture/testdata/tls-lo.pcap"
	tlsFixtureKeys = "../../capture/testdata/tls-lo.keys"
)

// TestCaptureKeylog runs 'reprise capture --keylog' on the committed TLS
// capture: with the key log every served exchange is recorded; without it
// the connections are named by SNI; bad key log lines are reported.
func TestCaptureKeylog(t *testing.T) {
	dir := t.TempDir()
	keys, err := os.ReadFile(tlsFixtureKeys)
	if err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(dir, "half.keys")
	lines := strings.SplitAfter(string(keys), "\n")
	os.WriteFile(half, []byte("not a key log line\n"+strings.Join(lines[:len(lines)/2], "")), 0o600)
	rest := filepath.Join(dir, "rest.keys")
	os.WriteFile(rest, []byte(strings.Join(lines[len(lines)/2:], "")), 0o600)
	ng := filepath.Join(dir, "tls.pcapng")
	writePcapngWithSecrets(t, tlsFixture, ng, keys)

	tests := []captureCase{
		// The key log decrypts every connection.
		{name: "keylog", args: []string{"--pcap", tlsFixture, "--keylog", tlsFixtureKeys}, exchanges: 16, stderr: "decrypted TLS: TLS 1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 sni=example.com 1,"},
		// Without it, the connections are named by the host they were for.
		{name: "no keylog", args: []string{"--pcap", tlsFixture}, exchanges: 0, stderr: "tls no keys sni=example.com 6"},
		// Two key logs (repeatable), one with a garbage line.
		{name: "two keylogs", args: []string{"--pcap", tlsFixture, "--keylog", half, "--keylog", rest}, exchanges: 16, stderr: "skipped 1 unusable lines (first: " + half + ":1:"},
		// pcapng Decryption Secrets Blocks need no --keylog.
		{name: "pcapng secrets", args: []string{"--pcap", ng}, exchanges: 16, stderr: "captured 16 exchanges (0 incomplete) on 6 connections"},
		// A missing key log is a usage error naming it.
		{name: "missing keylog", args: []string{"--pcap", tlsFixture, "--keylog", "nope.keys"}, code: exitUsage, stderr: "--keylog \"nope.keys\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.run(t)
			if out == "" {
				return
			}
			rec, _ := os.ReadFile(out)
			if bytes.Contains(rec, []byte("CLIENT_RANDOM")) || bytes.Contains(rec, []byte("TRAFFIC_SECRET")) {
				t.Error("the recording holds key log lines")
			}
		})
	}
}

// writePcapngWithSecrets copies a pcap into a pcapng whose first block
// after the section header is a Decryption Secrets Block with the key log,
// as 'editcap --inject-secrets tls,FILE' writes it.
func writePcapngWithSecrets(t *testing.T, in, out string, keylog []byte) {
	t.Helper()
	r := testkit.ReadFile(t, in, pcapgo.NewReader)
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, r.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	b := buf.Bytes()
	shbLen := binary.LittleEndian.Uint32(b[4:8])
	body := binary.LittleEndian.AppendUint32(nil, 0x544c534b)
	body = binary.LittleEndian.AppendUint32(body, uint32(len(keylog)))
	body = append(body, keylog...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	dsb := binary.LittleEndian.AppendUint32(nil, 0x0A)
	dsb = binary.LittleEndian.AppendUint32(dsb, uint32(12+len(body)))
	dsb = append(dsb, body...)
	dsb = binary.LittleEndian.AppendUint32(dsb, uint32(12+len(body)))
	file := append(append(append([]byte(nil), b[:shbLen]...), dsb...), b[shbLen:]...)
	if err := os.WriteFile(out, file, 0o600); err != nil {
		t.Fatal(err)
	}
}
