package har

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
	"github.com/reprise-tool/reprise/session"
)

// The HARs in testdata were recorded by Playwright 1.65 (playwright-core)
// driving Debian's Chromium 156 over a page that testdata/playwright-server.js
// served on loopback (testdata/playwright-record.js, content "embed" and
// "omit"). Every request the server logged comes back, except the
// browser's own favicon request, which Playwright does not record.
func TestPlaywrightHAR(t *testing.T) {
	logged, err := os.ReadFile("testdata/playwright-server.log")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(logged)), "\n") {
		if l != "GET /favicon.ico" {
			want = append(want, l)
		}
	}
	for _, name := range []string{"embed", "omit"} {
		t.Run(name, func(t *testing.T) {
			r, err := Open("testdata/playwright-" + name + ".har")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			xs, errs, err := sourcetest.Drain[*EntryError](t, r, 100)
			if err != nil || len(errs) > 0 {
				t.Fatal(err, errs)
			}
			var got []string
			for _, x := range xs {
				got = append(got, x.Request.Method+" "+x.Request.Target)
				if x.Response.Status == 0 || x.Conn.Server.Port() != 18731 || x.Timing.ResponseEnd <= x.Timing.RequestStart {
					t.Errorf("%s: %d %v %+v", x.Request.Target, x.Response.Status, x.Conn.Server, x.Timing)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			js, post := xs[1], xs[5]
			if name == "embed" {
				// The script was sent gzip'd; the HAR holds it decoded.
				if len(js.Response.Body) != 650 || js.Response.Header.Get("Content-Encoding") != "" || js.Response.Header.Get("Content-Length") != "650" {
					t.Errorf("script: %d bytes, %q", len(js.Response.Body), js.Response.Header)
				}
				if string(post.Response.Body) != `added {"id":1}` {
					t.Errorf("post response %q", post.Response.Body)
				}
			} else if len(js.Response.Body) != 0 || js.Flags&session.FlagResponseTruncated == 0 || js.Response.BodySize != 650 {
				t.Errorf("omitted script: %q %v %d", js.Response.Body, js.Flags, js.Response.BodySize)
			}
			wantBody := `{"id":1}`
			if name == "omit" {
				// Playwright omits request bodies too; the size stays.
				wantBody = ""
				if post.Flags&session.FlagRequestTruncated == 0 || post.Request.BodySize != 8 {
					t.Errorf("omitted post: %v %d", post.Flags, post.Request.BodySize)
				}
			}
			if string(post.Request.Body) != wantBody {
				t.Errorf("post body %q", post.Request.Body)
			}
		})
	}
}

// TestPlaywrightRouteFromHAR serves HARs written by Writer to Chromium
// through Playwright's routeFromHAR, with no server behind: the recorded
// page must load, run its gzip'd script, and make its fetch and POST from
// the HAR. It runs only where REPRISE_PLAYWRIGHT names a folder holding
// node_modules/playwright-core and REPRISE_CHROMIUM a Chromium binary
// (Debian: /usr/lib/chromium/chromium), as on a developer's machine:
//
//	REPRISE_PLAYWRIGHT=/tmp/pw REPRISE_CHROMIUM=/usr/lib/chromium/chromium go test -run RouteFromHAR ./capture/har
func TestPlaywrightRouteFromHAR(t *testing.T) {
	pw, chromium := os.Getenv("REPRISE_PLAYWRIGHT"), os.Getenv("REPRISE_CHROMIUM")
	if pw == "" || chromium == "" {
		t.Skip("set REPRISE_PLAYWRIGHT and REPRISE_CHROMIUM to run")
	}
	r, err := Open("testdata/playwright-embed.har")
	if err != nil {
		t.Fatal(err)
	}
	xs, _, err := sourcetest.Drain[*EntryError](t, r, 100)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, xs []*session.Exchange) string {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sourcetest.WriteAll(t, NewWriter(f), xs)
		return f.Name()
	}
	script, err := filepath.Abs("testdata/playwright-replay.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		har, url, title, want string
	}{
		{write("browser.har", xs), "http://127.0.0.1:18731/", "added", `title added {"id":1} app 1 items 3`},
		{write("sample.har", sample()), "http://shop.test/page", "", "body <html>hello</html>"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "node", script, c.har, c.url, c.title)
		cmd.Dir = pw
		cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "NODE_PATH="+filepath.Join(pw, "node_modules"))
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "failed []") {
			t.Errorf("%s: %v\n%s", c.url, err, out)
		}
	}
}
