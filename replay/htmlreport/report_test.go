package htmlreport

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sampleReport is a realistic run: a 1x:2m,2x:2m,5x ramp against a shop
// that degrades at 5x until p99>2s trips at 4:50.
func sampleReport() *Report {
	rng := rand.New(rand.NewPCG(7, 11))
	r := &Report{
		Title:     "reprise replay shop.rpz → http://127.0.0.1:8090",
		Target:    "http://127.0.0.1:8090",
		Recording: []string{"shop.rpz (20,000 requests, 10m0s)"},
		Started:   time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC),
		Outcome:   "stopped by a guard",
		Stages:    []Stage{{"1x:2m", 0, 120}, {"2x:2m", 120, 240}, {"5x", 240, 295}},
		Abort: &Abort{At: 290, Rule: "p99>2s",
			Reason: "p99 was 2.41s (limit >2s) over the last 10s (1710 requests) at 01:04:50Z"},
	}
	for t := 0; t < 295; t++ {
		speed := 1.0
		switch {
		case t >= 240:
			speed = 5
		case t >= 120:
			speed = 2
		}
		intended := 34*speed*(1+0.25*math.Sin(float64(t)/9)) + rng.Float64()*6
		if t >= 290 {
			intended = 0 // stopped issuing
		}
		achieved := intended * (0.98 + rng.Float64()*0.02)
		base := 12.0
		if t >= 250 {
			base += math.Pow(float64(t-250), 1.6) * 2
			achieved = math.Min(achieved, 150+rng.Float64()*10)
		}
		errs := 0
		if t >= 265 && t < 292 {
			errs = rng.IntN(4 + (t-265)/2)
		}
		s := Second{T: t, Intended: math.Round(intended), Achieved: math.Round(achieved), Completed: int(achieved),
			P50: base * (1 + rng.Float64()*0.1), P90: base * 2.2, P99: base*4 + rng.Float64()*15, Errors: errs}
		if errs > 2 {
			s.Timeouts = errs / 3
		}
		if t >= 292 {
			s.Completed, s.Achieved = 0, 0
		}
		r.Series = append(r.Series, s)
	}
	r.Summary = []Row{
		{Name: "Outcome", Value: "stopped by a guard at 4:50: p99>2s", Bad: true},
		{Name: "Requests sent", Value: "25,412 of 61,200 due"},
		{Name: "Completed", Value: "25,398"},
		{Name: "Errors", Value: "187 (0.7%)", Bad: true},
		{Name: "Latency from due p50 / p90 / p99", Value: "14ms / 61ms / 1.9s"},
		{Name: "Latency from send p99", Value: "1.7s"},
		{Name: "Schedule lag p99", Value: "240ms"},
		{Name: "Time waiting at --rate", Value: "0s"},
		{Name: "On-abort command", Value: "ran, exit 0 in 1.2s"},
	}
	r.Routes = []Route{
		{"GET /api/items", 14210, 61, 11.2, 48.0, 1710.5},
		{"GET /api/items/{id}", 6021, 30, 9.8, 40.1, 1650.0},
		{"POST /api/cart", 3012, 52, 25.4, 120.7, 2300.2},
		{"POST /api/orders", 1140, 44, 40.3, 210.9, 2950.0},
		{"POST /auth/refresh <script>", 1029, 0, 6.1, 15.0, 60.2},
	}
	return r
}

func render(t *testing.T, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGolden compares the page with testdata/report.golden.html, and the
// input's JSON form with testdata/report.json (go test -update rewrites
// both).
func TestGolden(t *testing.T) {
	r := sampleReport()
	got := render(t, r)
	js, _ := json.MarshalIndent(r, "", "  ")
	for name, data := range map[string][]byte{"report.golden.html": got, "report.json": append(js, '\n')} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(got, want) && name == "report.golden.html" {
			t.Errorf("%s differs; run go test -update and review the diff", path)
		}
		if name == "report.json" {
			f, _ := os.Open(path)
			defer f.Close()
			dec, err := Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(render(t, dec), got) {
				t.Error("the page rendered from report.json differs from the page of the same report")
			}
		}
	}
}

var (
	// Anything that makes a browser fetch: a src, href, srcset, action,
	// poster or data attribute with a scheme or //, CSS url() and @import,
	// <link>, <script>, <iframe>, <object>, <embed>, <base>.
	fetching = regexp.MustCompile(`(?i)(\b(src|href|srcset|action|poster|data|xlink:href)\s*=)|url\s*\(|@import|<\s*(link|script|iframe|object|embed|base|img|image|use|meta\s+http-equiv)\b`)
	anyURL   = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9]`)
)

// TestSelfContained: the page loads nothing from anywhere. The only URL
// in it is the target's, as text.
func TestSelfContained(t *testing.T) {
	page := string(render(t, sampleReport()))
	if m := fetching.FindAllString(page, -1); len(m) > 0 {
		t.Errorf("page can fetch: %q", m)
	}
	rest := strings.ReplaceAll(page, "http://127.0.0.1:8090", "")
	if m := anyURL.FindAllString(rest, -1); len(m) > 0 {
		t.Errorf("page holds URLs besides the target: %q", m)
	}
	// User text is escaped.
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") {
		t.Error("route name not escaped")
	}
	for _, want := range []string{`class="series intended"`, `class="series achieved"`, `class="series p50"`,
		`class="series p90"`, `class="series p99"`, `<g class="series err">`, `class="abort"`, `aborted at 4:50: p99&gt;2s`,
		`class="stage stage0"`, `>2x:2m</text>`, `id="summary"`, `id="routes"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestRenderEdges(t *testing.T) {
	tests := []struct {
		name string
		r    *Report
		want string // part of the page, or of the error
		err  bool
	}{
		// No data at all still renders a page that says so.
		{"empty", &Report{Title: "empty run"}, "No requests were recorded", false},
		// One second: no division by zero.
		{"one second", &Report{Title: "x", Series: []Second{{T: 0, Intended: 1, Achieved: 1, Completed: 1, P50: 1, P90: 1, P99: 1}}}, `class="series p99"`, false},
		// All zero values: the axis still has a top.
		{"zeros", &Report{Title: "x", Series: []Second{{T: 0}, {T: 1}}}, `class="series achieved"`, false},
		// Out-of-order series is refused with the fix.
		{"unsorted", &Report{Series: []Second{{T: 2}, {T: 1}}}, "sort the series", true},
		// A day-long run is drawn from groups of seconds.
		{"long", longReport(), `class="series p99"`, false},
		// A nil report.
		{"nil", nil, "nothing to render", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Render(&b, tt.r)
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.want) || strings.Contains(b.String(), "NaN") {
				t.Errorf("page lacks %q or holds NaN", tt.want)
			}
		})
	}
}

// TestChromium loads the page in headless Chromium, checks the charts are
// in the rendered DOM, and takes a screenshot in the test's temp folder.
func TestChromium(t *testing.T) {
	bin := "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		if p, err := exec.LookPath("chromium"); err == nil {
			bin = p
		} else {
			t.Skip("chromium is not installed (Debian package chromium; .ci/setup installs it): the page was not loaded in a browser")
		}
	}
	if testing.Short() {
		t.Skip("-short: not starting a browser")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "run.html")
	if err := os.WriteFile(file, render(t, sampleReport()), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	args := func(extra ...string) []string {
		return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1280,2000"}, append(extra, "file://"+file)...)
	}
	run := func(extra ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args(extra...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
		}
		return out
	}
	dom := string(run("--dump-dom"))
	for _, want := range []string{`class="series achieved" d="M`, `class="series p99" d="M`, `<g class="series err"><rect`, `class="abort"`, `id="summary"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %s", want)
		}
	}
	if n := strings.Count(dom, `<svg class="chart"`); n != 3 {
		t.Errorf("DOM has %d charts, want 3", n)
	}
	run("--screenshot=" + shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if colors := countColors(img); colors < 50 {
		t.Errorf("screenshot has %d colours: the page looks blank", colors)
	}
	t.Logf("screenshot: %s", shot)
	if dst := os.Getenv("REPRISE_KEEP_SCREENSHOT"); dst != "" {
		b, _ := os.ReadFile(shot)
		os.WriteFile(dst, b, 0o644)
	}
}

func countColors(img image.Image) int {
	seen := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
		}
	}
	return len(seen)
}

func BenchmarkRender(b *testing.B) {
	r := sampleReport()
	base := r.Series
	r.Series = make([]Second, 3600) // an hour-long run
	for i := range r.Series {
		r.Series[i] = base[i%len(base)]
		r.Series[i].T = i
	}
	var buf bytes.Buffer
	if err := Render(&buf, r); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := Render(&buf, r); err != nil {
			b.Fatal(err)
		}
	}
}

func longReport() *Report {
	r := &Report{Title: "a day"}
	for i := 0; i < 86400; i++ {
		r.Series = append(r.Series, Second{T: i, Intended: 10, Achieved: 10, Completed: 10, P50: 5, P90: 9, P99: float64(20 + i%97)})
	}
	r.Series[50000].Errors = 3
	return r
}

func TestGroup(t *testing.T) {
	g := group(longReport().Series, MaxPoints)
	if len(g) > MaxPoints || g[0].Intended != 10 || g[0].P99 != 91 {
		t.Errorf("%d points, first %+v", len(g), g[0])
	}
	errs := 0
	for _, s := range g {
		errs += s.Errors
	}
	if errs == 0 {
		t.Error("a burst of errors vanished in grouping")
	}
}
