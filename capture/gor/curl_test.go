package gor

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
)

// The files in testdata/curl hold curl-made traffic (curls.sh) recorded in
// GoReplay's published format by gorproxy.py, a recording proxy written
// apart from this package, in front of the page server of capture/har's
// Playwright fixtures: curl3.gor with the three-field meta lines of
// GoReplay before 1.0, curl4.gor.gz with four fields, gzip'd. Every
// request the server logged comes back, parsed as sent.
func TestCurlFiles(t *testing.T) {
	logged, err := os.ReadFile("testdata/curl/server.log")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(logged)), "\n")
	for _, name := range []string{"curl3.gor", "curl4.gor.gz"} {
		t.Run(name, func(t *testing.T) {
			r, err := Open("testdata/curl/" + name)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			xs, errs, err := sourcetest.Drain[*PayloadError](t, r, 100)
			if err != nil || len(errs) > 0 {
				t.Fatal(err, errs)
			}
			var got []string
			for _, x := range xs {
				got = append(got, x.Request.Method+" "+x.Request.Target)
				if x.Flags != 0 || x.Timing.RequestStart == 0 || x.Timing.ResponseEnd < x.Timing.ResponseStart {
					t.Errorf("%s: flags %v, timing %+v, warnings %q", x.Request.Target, x.Flags, x.Timing, x.Warnings)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			statuses := []int{200, 200, 200, 200, 201, 201, 200, 404}
			for i, x := range xs {
				if x.Response.Status != statuses[i] {
					t.Errorf("%s: status %d, want %d", x.Request.Target, x.Response.Status, statuses[i])
				}
			}
			js, post, chunked, head := xs[1], xs[4], xs[5], xs[6]
			if js.Response.Header.Get("Content-Encoding") != "gzip" || !bytes.HasPrefix(js.Response.Body, []byte{0x1f, 0x8b}) {
				t.Errorf("gzip'd script: %q", js.Response.Header)
			}
			if string(post.Request.Body) != `{"id":1}` || string(post.Response.Body) != `added {"id":1}` {
				t.Errorf("post: %q -> %q", post.Request.Body, post.Response.Body)
			}
			if string(chunked.Request.Body) != "chunked body" {
				t.Errorf("chunked post: %q", chunked.Request.Body)
			}
			if len(head.Response.Body) != 0 || head.Response.Header.Get("Content-Type") != "image/png" {
				t.Errorf("head: %q %q", head.Response.Header, head.Response.Body)
			}
			if st := r.Stats(); st.Requests != 8 || st.Responses != 8 || st.Unanswered+st.Orphans+st.Damaged != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
