package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedactionFlags: --redact-key-file gives the same hashes in two
// recordings (and a missing or short key is a usage error); --keep-secrets
// is loud in the summary, and inspect warns about such a recording and
// about an old one, but not about a default one. Files are created 0600.
func TestRedactionFlags(t *testing.T) {
	dir := t.TempDir()
	old := writeShop(t, dir, "old.rpz") // cookies in clear, as before issue 20
	har := filepath.Join(dir, "shop.har")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"export", old, "-o", har}, &stdout, &stderr); code != 0 {
		t.Fatalf("export: %s", stderr.String())
	}
	key := filepath.Join(dir, "team.key")
	os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("tiny"), 0o600)

	imp := func(out string, extra ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := run(append([]string{"import", har, "-o", filepath.Join(dir, out)}, extra...), &o, &e)
		return code, o.String(), e.String()
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"missing key file", []string{"--redact-key-file", filepath.Join(dir, "nope.key")}},
		{"short key", []string{"--redact-key-file", short}},
	} {
		if code, _, e := imp("bad.rpz", tc.args...); code == 0 || !strings.Contains(e, "--redact-key-file") {
			t.Errorf("%s: exit %d, %q", tc.name, code, e)
		}
	}
	cookie := func(name string) string {
		xs := readRecording(t, filepath.Join(dir, name))
		return xs[0].Request.Header.Get("Cookie")
	}
	for _, out := range []string{"a.rpz", "b.rpz", "c.rpz"} {
		args := []string{"--redact-key-file", key}
		if out == "c.rpz" {
			args = nil // a key of its own
		}
		if code, _, e := imp(out, args...); code != 0 {
			t.Fatalf("import %s: %s", out, e)
		}
		if fi, err := os.Stat(filepath.Join(dir, out)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", out, fi.Mode(), err)
		}
	}
	if a, b, c := cookie("a.rpz"), cookie("b.rpz"), cookie("c.rpz"); a != b || a == c || !strings.Contains(a, "rdct_") {
		t.Errorf("cookies %q %q %q: want equal hashes with one key file, different without", a, b, c)
	}

	code, sum, e := imp("clear.rpz", "--keep-secrets")
	if code != 0 || !strings.Contains(sum+e, "WARNING: credentials kept in clear") {
		t.Errorf("--keep-secrets: exit %d, summary %q %q", code, sum, e)
	}
	for _, tc := range []struct {
		file string
		warn bool
	}{{"a.rpz", false}, {"clear.rpz", true}, {"old.rpz", true}} {
		var o, e bytes.Buffer
		run([]string{"inspect", filepath.Join(dir, tc.file)}, &o, &e)
		if got := strings.Contains(e.String(), "WARNING: this recording holds working credentials"); got != tc.warn {
			t.Errorf("inspect %s: warning %v, want %v: %q", tc.file, got, tc.warn, e.String())
		}
	}
}
