package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
)

// inspect and check read .gor and HAR files in place of a recording: the
// demo shop's recording exported to each gives the same traffic figures
// as the recording itself.
func TestInspectCheckImportOnTheFly(t *testing.T) {
	dir := t.TempDir()
	rec := writeShop(t, dir, "shop.rpz")
	type figures struct {
		Exchanges int64
		Methods   []struct {
			Name  string
			Count int64
		}
		Statuses []struct{ Status, Count int64 }
		Routes   []struct {
			Method, Route string
			Count         int64
		}
	}
	inspect := func(path string) figures {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run([]string{"inspect", "--json", path}, &out, &errb); code != exitOK {
			t.Fatalf("inspect %s: exit %d: %s", path, code, errb.String())
		}
		var f figures
		if err := json.Unmarshal(out.Bytes(), &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	checkLoad := func(path string) any {
		t.Helper()
		var out, errb bytes.Buffer
		code := run([]string{"check", "--json", path}, &out, &errb)
		if code != exitOK && code != exitFailure {
			t.Fatalf("check %s: exit %d: %s", path, code, errb.String())
		}
		var doc map[string]any
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("check %s: %v\n%s", path, err, out.String())
		}
		r, _ := doc["recording"].(map[string]any)
		load, _ := r["load"].(map[string]any)
		// The recording's one refresh is a token event written by hand,
		// with no token in the traffic for the tracker to find again.
		for _, k := range []string{"refreshes", "refreshes_per_s", "peak_refreshes_per_s"} {
			delete(load, k)
		}
		if load["requests"] != 240.0 {
			t.Fatalf("check %s: load %v, want 240 requests", path, load)
		}
		return load
	}
	want, wantCheck := inspect(rec), checkLoad(rec)
	for _, name := range []string{"shop.gor", "shop.har.gz"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			var out, errb bytes.Buffer
			if code := run([]string{"export", rec, "-o", path}, &out, &errb); code != exitOK {
				t.Fatalf("export exit %d: %s", code, errb.String())
			}
			if got := inspect(path); !reflect.DeepEqual(got, want) {
				t.Errorf("inspect %s:\n %+v\nthe recording:\n %+v", name, got, want)
			}
			if got := checkLoad(path); !reflect.DeepEqual(got, wantCheck) {
				t.Errorf("check %s: load %v\nthe recording's: %v", name, got, wantCheck)
			}
		})
	}
}
