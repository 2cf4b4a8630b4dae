package compare

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenReport is a small, fixed comparison: one route with a real
// difference, one with noise only, one clean.
func goldenReport(t *testing.T) Report {
	t.Helper()
	c, err := New(WithIgnore("$.meta"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		p := jsonResp(200, fmt.Sprintf(`{"id":%d,"price_cents":1999,"created_at":"2026-11-26T01:00:%02dZ","meta":{"x":%d}}`, i, i, i))
		s := jsonResp(200, fmt.Sprintf(`{"id":%d,"price_cents":2000,"created_at":"2026-11-26T02:00:%02dZ","meta":{"x":0}}`, i, i))
		c.Observe("GET /api/products/{id}", c.Diff(p, s, nil))
		a := jsonResp(200, fmt.Sprintf(`{"n":%d,"items":[1,2]}`, i))
		b := jsonResp(200, fmt.Sprintf(`{"n":%d,"items":[1,2]}`, i+1))
		c.Observe("GET /api/feed", c.Diff(a, b, nil))
		c.ObserveNoise("GET /api/feed", c.Diff(a, b, nil))
		c.Observe("GET /healthz", c.Diff(jsonResp(200, `{"ok":true}`), jsonResp(200, `{"ok":true}`), nil))
	}
	return c.Report()
}

func TestReportGolden(t *testing.T) {
	r := goldenReport(t)
	var text, js, html bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(&js)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(&html, "diff"); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"report.txt": text.Bytes(), "report.json": js.Bytes(), "report.html": html.Bytes()} {
		testkit.Golden(t, filepath.Join("testdata", name), got, *update)
	}
}
