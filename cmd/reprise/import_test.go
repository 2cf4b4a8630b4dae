package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shop's recording exported to HAR and to .gor (gzip'd too) and
// imported again equals itself: method, target, headers, bodies, status,
// flags and timestamps.
func TestImportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rec := writeShop(t, dir, "shop.rpz")
	want := readRecording(t, rec)
	for _, name := range []string{"shop.har", "shop.gor", "shop.har.gz", "shop.gor.gz"} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, name)
			runOK(t, "export", rec, "-o", out)
			// A wrong name: the format is told by content.
			odd := filepath.Join(dir, name+".data")
			if err := os.Rename(out, odd); err != nil {
				t.Fatal(err)
			}
			back := filepath.Join(dir, name+".rpz")
			// --keep-secrets: the round trip is of the format; the written
			// recording's cookies (sid=0) would be hashed by default.
			stdout, _ := runOK(t, "import", odd, "-o", back, "--json", "--max-body", "64", "--keep-secrets")
			var sum importSummary
			if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
				t.Fatal(err)
			}
			if sum.Counters.Exchanges != uint64(len(want)) || sum.Damaged != 0 || sum.Sessions == 0 || len(sum.Files) != 1 {
				t.Errorf("summary %+v", sum)
			}
			sameAsRecorded(t, name, want, readRecording(t, back))
		})
	}
}

// A cut .gor and a broken HAR: every good exchange is imported, the
// damage listed with its offset or entry, and import exits with 1.
func TestImportDamage(t *testing.T) {
	dir := t.TempDir()
	rec := writeShop(t, dir, "shop.rpz")
	var stdout, stderr bytes.Buffer
	for _, n := range []string{"shop.gor", "shop.har"} {
		if code := run([]string{"export", rec, "-o", filepath.Join(dir, n)}, &stdout, &stderr); code != 0 {
			t.Fatal(stderr.String())
		}
	}
	g, _ := os.ReadFile(filepath.Join(dir, "shop.gor"))
	os.WriteFile(filepath.Join(dir, "cut.gor"), g[:len(g)-40], 0o644)
	h, _ := os.ReadFile(filepath.Join(dir, "shop.har"))
	os.WriteFile(filepath.Join(dir, "cut.har"), h[:len(h)/2], 0o644)
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"import", filepath.Join(dir, "cut.*"), "-o", filepath.Join(dir, "back.rpz"), "--host", "shop.local"}, &stdout, &stderr)
	if code != exitFailure {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stderr.String()
	if !strings.Contains(out, "cut.gor: payload at byte") || !strings.Contains(out, "cut.har: entry") || !strings.Contains(out, "hosts: shop.local") {
		t.Errorf("summary:\n%s", out)
	}
	got := readRecording(t, filepath.Join(dir, "back.rpz"))
	if len(got) < 240+100 || len(got) >= 2*240 {
		t.Errorf("%d exchanges imported from the cut files", len(got))
	}
}

func TestImportUsage(t *testing.T) {
	dir := t.TempDir()
	rec := writeShop(t, dir, "shop.rpz")
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"import", rec}, exitUsage}, // no -o
		{[]string{"import", rec, "-o", filepath.Join(dir, "x.rpz"), "--max-body", "1TB"}, exitUsage}, // over the cap
		{[]string{"import", rec, "-o", filepath.Join(dir, "x.rpz")}, exitFailure},                    // already a recording
		{[]string{"import", filepath.Join(dir, "none*.gor"), "-o", filepath.Join(dir, "x.rpz")}, exitFailure},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(c.args, &stdout, &stderr); code != c.code {
			t.Errorf("%q: exit %d, want %d: %s", c.args, code, c.code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"import", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "reprise import") {
		t.Errorf("help: exit %d", code)
	}
}

func TestImportSource(t *testing.T) {
	if got := importSource([]string{"a.gor", "b.har"}); got != "import:a.gor,b.har" {
		t.Error(got)
	}
	if got := importSource([]string{"1", "2", "3", "4", "5", "6"}); got != "import:1,2,3,4,... (6 files)" {
		t.Error(got)
	}
}
