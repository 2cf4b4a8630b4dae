package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// writeTLSRecording writes a recording whose capture met TLS: two
// exchanges from decrypted connections, and counters for connections
// decrypted, without keys (two server names and one by address) and
// with a suite it cannot read.
func writeTLSRecording(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	fw, err := session.Create(path, session.Metadata{Source: "pcap:tls.pcap", Filter: "tcp port 443", Tool: "reprise test", Start: 1767225600e9})
	if err != nil {
		t.Fatal(err)
	}
	start := int64(1767225600e9)
	for i := range 2 {
		ts := start + int64(i)*1e9
		ex := &session.Exchange{
			Conn:     session.Conn{ID: uint64(i), Client: netip.MustParseAddrPort("127.0.0.1:40000"), Server: netip.MustParseAddrPort("127.0.0.1:443")},
			Request:  session.Request{Method: "GET", Target: "/api/items", Proto: "HTTP/1.1", Header: session.Headers{{Name: "Host", Value: "shop.example"}}},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200, Reason: "OK"},
			Timing:   session.Timing{RequestStart: ts, RequestEnd: ts + 1e6, ResponseStart: ts + 5e6, ResponseEnd: ts + 6e6},
		}
		if err := fw.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	fw.UpdateCounters(session.Counters{PacketsSeen: 400, Connections: 12, Exchanges: 2,
		TLS: map[string]uint64{
			"TLS 1.3 TLS_AES_128_GCM_SHA256 sni=shop.example alpn=http/1.1":          1,
			"TLS 1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 sni=shop.example alpn=h2": 1,
		},
		Unsupported: map[string]uint64{
			"tls": 10, "tls no keys sni=api.example": 6, "tls no keys sni=(none)": 1,
			"tls no keys sni=pay.example": 2, "tls unsupported suite": 1, "websocket": 1,
		}})
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// Inspect shows the decrypted TLS connections by their parameters and,
// set apart, those without keys by server name with the key log to bring.
func TestInspectTLSGolden(t *testing.T) {
	goldenDir, err := filepath.Abs(filepath.Join("testdata", "inspect"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTLSRecording(t, dir, "tls.rpz")
	t.Chdir(dir)
	for _, tt := range []struct {
		name string
		args []string
		file string
	}{
		{"text", []string{"inspect", "tls.rpz"}, "tls.txt"},              // the TLS sections above the routes
		{"json", []string{"inspect", "--json", "tls.rpz"}, "tls.json"},   // decrypted and no_keys under tls
		{"quick", []string{"inspect", "--quick", "tls.rpz"}, "tlsq.txt"}, // the trailer index has the counters too
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != exitOK {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			testkit.Golden(t, filepath.Join(goldenDir, tt.file), out.Bytes(), updateGolden())
		})
	}
}

// The committed TLS capture, recorded with and without its key log:
// inspect names the connections it could not read by their server name,
// and those it decrypted by their parameters.
func TestInspectTLSCapture(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		text    []string
		noKeys  int64
		decrypt bool
	}{
		{"no keylog", nil, []string{"TLS WITHOUT KEYS: 6 connections", "sni=example.com", "--keylog FILE", "SSLKEYLOGFILE"}, 6, false},
		{"keylog", []string{"--keylog", tlsFixtureKeys}, []string{"TLS decrypted: 6 connections", "sni=example.com alpn="}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rec.rpz")
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"capture", "--pcap", tlsFixture, "-o", out}, tc.args...), &stdout, &stderr); code != exitOK {
				t.Fatalf("capture exit %d: %s", code, stderr.String())
			}
			stdout.Reset()
			if code := run([]string{"inspect", out}, &stdout, &stderr); code != exitOK {
				t.Fatalf("inspect exit %d: %s", code, stderr.String())
			}
			for _, s := range tc.text {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("inspect does not say %q:\n%s", s, stdout.String())
				}
			}
			stdout.Reset()
			if code := run([]string{"inspect", "--json", out}, &stdout, &stderr); code != exitOK {
				t.Fatalf("inspect exit %d: %s", code, stderr.String())
			}
			var doc struct {
				TLS struct {
					Decrypted []struct{ Count int64 } `json:"decrypted"`
					NoKeys    []struct {
						Name  string
						Count int64
					} `json:"no_keys"`
				} `json:"tls"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			var missed int64
			for _, c := range doc.TLS.NoKeys {
				if c.Name != "example.com" {
					t.Errorf("no keys for %q, want example.com", c.Name)
				}
				missed += c.Count
			}
			if missed != tc.noKeys || (len(doc.TLS.Decrypted) > 0) != tc.decrypt {
				t.Errorf("json tls %+v: want %d without keys, decrypted %v", doc.TLS, tc.noKeys, tc.decrypt)
			}
		})
	}
}
