package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// The -update flag rewrites golden files. It is registered here unless
// another test file of the package already did (package variables are
// initialised before init runs), so the verbs' tests can share it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// writeShop writes a small deterministic recording to dir/name: a minute
// of shop traffic from three sessions, with a login, a refresh, a rejected
// token, a truncated body, a missing response and a parse warning.
func writeShop(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	fw, err := session.Create(path, session.Metadata{Source: "pcap:shop.pcap", Filter: "tcp port 8080", Tool: "reprise test", Start: 1767225600e9}, session.BodyCap(64))
	if err != nil {
		t.Fatal(err)
	}
	start := int64(1767225600e9)
	targets := []string{"/api/items/%d", "/api/items?page=%d", "/api/carts/6f1c2e0a-8d7b-4c1e-9a55-%012d/lines", "/static/app.js?v=%d"}
	for i := range 240 {
		ts := start + int64(i)*250e6 + int64(i%7)*1e6 // 4 per second, a minute
		if i > 120 && i < 160 {
			ts += int64(i-120) * 50e6 // a busier patch in the middle
		}
		method, status := "GET", 200
		target := fmt.Sprintf(targets[i%len(targets)], 1000+i)
		if i%len(targets) == 2 {
			method, status = "POST", 201
		}
		if i%17 == 0 {
			status = 503
		}
		ex := &session.Exchange{
			Conn:    session.Conn{ID: uint64(i % 9), Client: netip.MustParseAddrPort("127.0.0.1:40000"), Server: netip.MustParseAddrPort("127.0.0.1:8080")},
			Index:   i / 9,
			Session: fmt.Sprintf("cookie:sid=%d", i%3),
			Request: session.Request{Method: method, Target: target, Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "Host", Value: "shop.local"}, {Name: "Cookie", Value: fmt.Sprintf("sid=%d", i%3)}}},
			Response: session.Response{Proto: "HTTP/1.1", Status: status, Reason: "OK",
				Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"ok":true}`), BodySize: 11},
			Timing: session.Timing{RequestStart: ts, RequestEnd: ts + 1e6, ResponseStart: ts + int64(5+i%20)*1e6, ResponseEnd: ts + int64(6+i%20)*1e6},
		}
		switch i {
		case 3:
			ex.Tokens = []session.TokenEvent{{Kind: session.TokenLogin, Name: "cookie:sid"}}
		case 100:
			ex.Tokens = []session.TokenEvent{{Kind: session.TokenRefresh, Name: "access_token", Proactive: true}}
		case 150:
			ex.Tokens = []session.TokenEvent{{Kind: session.TokenRejected, Name: "access_token"}}
			ex.Response.Status = 401
		case 200:
			ex.Response.Body = bytes.Repeat([]byte("x"), 100) // over the 64-byte cap
			ex.Response.BodySize = 100
		case 210:
			ex.Flags = session.FlagNoResponse
			ex.Response = session.Response{}
		case 220:
			ex.Warnings = []string{"response without Content-Length on keep-alive connection"}
		}
		if err := fw.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	fw.WriteTimeline(&session.Timeline{Key: "cookie:sid=0", Logins: 1})
	fw.UpdateCounters(session.Counters{PacketsSeen: 5000, PacketsDropped: 12, Connections: 9, Exchanges: 240, Incomplete: 1, Unsupported: map[string]uint64{"tls": 2}})
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspectGolden(t *testing.T) {
	goldenDir, err := filepath.Abs(filepath.Join("testdata", "inspect"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeShop(t, dir, "shop.rpz")
	t.Chdir(dir) // so the output names the file the same way every run
	for _, tt := range []struct {
		name string
		args []string
		file string
	}{
		{"text", []string{"inspect", "shop.rpz"}, "shop.txt"},                     // the at-a-glance summary
		{"json", []string{"inspect", "--json", "shop.rpz"}, "shop.json"},          // the same for machines
		{"glob and top", []string{"inspect", "--top", "3", "s*.rpz"}, "top3.txt"}, // globs expand; --top cuts the route list
		{"quick", []string{"inspect", "--quick", "shop.rpz"}, "quick.txt"},        // from the trailer index alone
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

func TestInspectJSONFields(t *testing.T) {
	dir := t.TempDir()
	path := writeShop(t, dir, "shop.rpz")
	var out, errb bytes.Buffer
	if code := run([]string{"inspect", "--json", path}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// The documented top-level fields (session/FORMAT.md) are all there.
	for _, k := range []string{"files", "start_ns", "end_ns", "duration_seconds", "exchanges", "rate", "methods",
		"routes", "distinct_routes", "statuses", "sessions", "exchanges_without_session", "timelines",
		"token_events", "losses", "damage"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	if doc["exchanges"].(float64) != 240 || doc["sessions"].(float64) != 3 {
		t.Errorf("exchanges %v sessions %v", doc["exchanges"], doc["sessions"])
	}
}

// TestInspectDamaged flips bytes in the middle of a recording: inspect
// prints what it recovered, names the offset, and exits 1.
func TestInspectDamaged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.rpz")
	fw, err := session.Create(path, session.Metadata{Source: "test"}, session.BlockSize(4<<10))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		body := []byte(fmt.Sprintf(`{"id":%d,"name":"item %d","tags":["a","b","c"]}`, i, i*7919%1000))
		fw.WriteExchange(&session.Exchange{
			Index:    i,
			Request:  session.Request{Method: "GET", Target: fmt.Sprintf("/items/%d", i), Proto: "HTTP/1.1"},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200, Body: body, BodySize: int64(len(body))},
			Timing:   session.Timing{RequestStart: int64(i+1) * 1e7, RequestEnd: int64(i+1)*1e7 + 1, ResponseEnd: int64(i+1)*1e7 + 2e6},
		})
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	mid := len(b) / 2
	for i := mid; i < mid+8; i++ {
		b[i] ^= 0xa5
	}
	os.WriteFile(path, b, 0o644)

	var out, errb bytes.Buffer
	code := run([]string{"inspect", path}, &out, &errb)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitFailure, errb.String())
	}
	text := out.String()
	for _, want := range []string{"GET /items/{id}", "1 damaged region(s)", "damaged at byte", "everything else above was recovered"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(errb.String(), "recording damaged") {
		t.Errorf("stderr = %q", errb.String())
	}
	// Most exchanges came back: only the damaged block's are missing.
	var n int
	fmt.Sscanf(text, "%d exchanges", &n)
	if n < 1900 || n >= 2000 {
		t.Errorf("recovered %d exchanges of 2000", n)
	}
}

func TestInspectUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		code int
	}{
		{"no file", []string{"inspect"}, exitUsage},                              // a file is required
		{"bad --top", []string{"inspect", "--top", "0", "x.rpz"}, exitUsage},     // at least one route
		{"missing file", []string{"inspect", "/nonexistent/x.rpz"}, exitFailure}, // not a usage error: the file is gone
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.code {
				t.Errorf("exit %d, want %d (%s)", code, tt.code, errb.String())
			}
		})
	}
}

// TestInspectEmpty: a recording without exchanges is summarised, not
// refused, and its JSON lists are empty rather than null.
func TestInspectEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.rpz")
	fw, err := session.Create(path, session.Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fw.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"inspect", "--json", path}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if bytes.Contains(out.Bytes(), []byte("null")) {
		t.Errorf("JSON has nulls:\n%s", out.String())
	}
}
