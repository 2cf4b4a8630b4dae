package importer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/capture/gor"
	"github.com/reprise-tool/reprise/capture/har"
	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
	"github.com/reprise-tool/reprise/session"
)

func TestDetect(t *testing.T) {
	cases := []struct {
		in   string
		want Format
	}{
		{"1 8e8b 1700000000000000000 100\nGET / HTTP/1.1\r\n", FormatGor}, // four-field meta
		{"2 8e8b 1700000000000000000\nHTTP/1.1 200 OK\r\n", FormatGor},    // three-field meta
		{"\xef\xbb\xbf\n  {\"log\":{}}", FormatHAR},                       // a BOM and blank space
		{"\x89RPZ\r\n\x1a\n", FormatRecording},                            // a recording
		{"\xd4\xc3\xb2\xa1\x02\x00", FormatPcap},                          // a pcap
		{"\x0a\x0d\x0d\x0a", FormatPcap},                                  // a pcapng
		{"GET / HTTP/1.1\r\n", ""},                                        // raw HTTP
		{"1 id notanumber\n", ""},                                         // not a meta line
		{"", ""},                                                          // empty
	}
	for _, c := range cases {
		got, err := Detect([]byte(c.in))
		if got != c.want || (c.want == "") != errors.Is(err, ErrUnknownFormat) {
			t.Errorf("Detect(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func exchange(host, target string, ts int64) *session.Exchange {
	return &session.Exchange{
		Request:  session.Request{Method: "GET", Target: target, Proto: "HTTP/1.1", Header: session.Headers{{Name: "Host", Value: host}}},
		Response: session.Response{Proto: "HTTP/1.1", Status: 200, Reason: "OK", Header: session.Headers{{Name: "Content-Length", Value: "0"}}},
		Timing:   session.Timing{RequestStart: ts, RequestEnd: ts, ResponseStart: ts + 1e6, ResponseEnd: ts + 2e6},
	}
}

// Files of both formats, gzip'd and named wrongly, read as one stream with
// connection IDs that do not collide, and a host filter on both.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	var g bytes.Buffer
	zw := gzip.NewWriter(&g)
	sourcetest.WriteAll(t, gor.NewWriter(zw), []*session.Exchange{exchange("a.test", "/g1", 1e18), exchange("b.test:8080", "/g2", 1e18+1e9)})
	zw.Close()
	var h bytes.Buffer
	sourcetest.WriteAll(t, har.NewWriter(&h), []*session.Exchange{exchange("a.test", "/h1", 2e18), exchange("b.test", "/h2", 2e18+1e9)})
	os.WriteFile(filepath.Join(dir, "1.txt"), g.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "2.json"), h.Bytes(), 0o644)

	src, err := Open([]string{filepath.Join(dir, "*")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	xs, errs, err := sourcetest.Drain[error](t, src, 100)
	src.Close()
	if err != nil || len(errs) > 0 {
		t.Fatal(err, errs)
	}
	var got []string
	ids := map[uint64]bool{}
	for _, x := range xs {
		got = append(got, x.Request.Target)
		ids[x.Conn.ID] = true
	}
	if strings.Join(got, " ") != "/g1 /g2 /h1 /h2" || len(ids) != 4 {
		t.Errorf("targets %q, %d connections", got, len(ids))
	}
	st := src.Stats()
	if len(st) != 2 || st[0].Format != FormatGor || st[0].Gor == nil || st[0].Gor.Exchanges != 2 || st[1].HAR == nil || st[1].HAR.Hosts["b.test"] != 1 {
		t.Errorf("stats %+v", st)
	}

	src, err = Open([]string{filepath.Join(dir, "1.txt"), filepath.Join(dir, "2.json")}, Options{Hosts: []string{"B.test"}})
	if err != nil {
		t.Fatal(err)
	}
	xs, _, err = sourcetest.Drain[error](t, src, 100)
	if err != nil || len(xs) != 2 || xs[0].Request.Target != "/g2" || xs[1].Request.Target != "/h2" {
		t.Errorf("filtered: %v %d", err, len(xs))
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"raw.http": "GET / HTTP/1.1\r\n\r\n",
		"x.pcap":   "\xd4\xc3\xb2\xa1\x02\x00\x04\x00",
		"x.rpz":    "\x89RPZ\r\n\x1a\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := Open([]string{p}, Options{}); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Open([]string{filepath.Join(dir, "none-*.gor")}, Options{}); err == nil {
		t.Error("a glob matching nothing opened")
	}
}

func TestIsDamage(t *testing.T) {
	if !IsDamage(&gor.PayloadError{Err: gor.ErrPartial}) || !IsDamage(fmt.Errorf("x: %w", &har.EntryError{Err: har.ErrSyntax})) || IsDamage(os.ErrNotExist) {
		t.Error("IsDamage")
	}
}

// With OnDamage, damage is handed over and reading goes on; the counters
// hold what was read and what was left out.
func TestOnDamage(t *testing.T) {
	dir := t.TempDir()
	var h bytes.Buffer
	sourcetest.WriteAll(t, har.NewWriter(&h), []*session.Exchange{exchange("a.test", "/h1", 2e18), exchange("b.test", "/h2", 2e18+1e9)})
	broken := strings.Replace(h.String(), `"method":"GET","url":"http://b.test/h2"`, `"method":"","url":"http://b.test/h2"`, 1)
	p := filepath.Join(dir, "x.har")
	os.WriteFile(p, []byte(broken), 0o644)
	ws := filepath.Join(dir, "ws.har")
	os.WriteFile(ws, []byte(strings.Replace(h.String(), "http://a.test", "ws://a.test", 1)), 0o644)
	var damage []error
	src, err := Open([]string{p, ws}, Options{OnDamage: func(err error) { damage = append(damage, err) }})
	if err != nil {
		t.Fatal(err)
	}
	xs, errs, err := sourcetest.Drain[error](t, src, 100)
	if err != nil || len(errs) > 0 || len(xs) != 2 || len(damage) != 1 {
		t.Fatalf("%v %v: %d exchanges, damage %v", err, errs, len(xs), damage)
	}
	c := src.Counters()
	if c.Exchanges != 2 || c.Connections != 2 || c.Unsupported["websocket"] != 1 {
		t.Errorf("counters %+v", c)
	}
}
