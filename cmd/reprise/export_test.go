package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/capture/gor"
	"github.com/reprise-tool/reprise/capture/har"
	"github.com/reprise-tool/reprise/session"
)

func readRecording(t *testing.T, path string) []*session.Exchange {
	t.Helper()
	src, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return drain(t, src)
}

func drain(t *testing.T, src session.Source) []*session.Exchange {
	t.Helper()
	var xs []*session.Exchange
	for {
		x, err := src.Next()
		if err == io.EOF {
			return xs
		}
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
}

// The demo shop's recording exported to HAR and to .gor, gzip'd or not,
// reads back as itself: method, target, headers, bodies, status and
// timestamps (HAR: to the millisecond).
func TestExportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rec := writeShop(t, dir, "shop.rpz")
	want := readRecording(t, rec)
	for _, name := range []string{"shop.har", "shop.gor", "shop.har.gz", "shop.gor.gz"} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, name)
			stdout, _ := runOK(t, "export", rec, "-o", out, "--json")
			var res exportResult
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			if res.Exchanges != int64(len(want)) || res.Truncated != 1 || res.Gzip != strings.HasSuffix(name, ".gz") {
				t.Errorf("result %+v", res)
			}
			var got []*session.Exchange
			if strings.Contains(name, ".har") {
				r, err := har.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				got = drain(t, r)
				r.Close()
			} else {
				r, err := gor.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				got = drain(t, r)
				r.Close()
			}
			sameAsRecorded(t, name, want, got)
		})
	}
}

// sameAsRecorded checks that exchanges back from a file of the format
// named by name's extension are the recorded ones: method, target,
// headers, bodies, status, flags and timestamps. The shop's times are
// whole milliseconds, so HAR keeps them too. Both sides are compared in
// time order (the recording loop may write in the identity tracker's).
func sameAsRecorded(t *testing.T, name string, want, got []*session.Exchange) {
	t.Helper()
	want, got = byTime(want), byTime(got)
	if len(got) != len(want) {
		t.Fatalf("%d exchanges back, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Request.Method != g.Request.Method || w.Request.Target != g.Request.Target || w.Request.Proto != g.Request.Proto ||
			!reflect.DeepEqual(w.Request.Header, g.Request.Header) || !bytes.Equal(w.Request.Body, g.Request.Body) {
			t.Fatalf("%d: request %+v, got %+v", i, w.Request, g.Request)
		}
		if w.Response.Status != g.Response.Status || w.Response.Reason != g.Response.Reason ||
			!reflect.DeepEqual(w.Response.Header, g.Response.Header) || !bytes.Equal(w.Response.Body, g.Response.Body) {
			t.Fatalf("%d: response %+v, got %+v", i, w.Response, g.Response)
		}
		// A request without a response has no response times.
		wt := w.Timing
		if w.Flags&session.FlagNoResponse != 0 {
			wt.ResponseStart, wt.ResponseEnd = 0, 0
		}
		wf := w.Flags &^ session.FlagRedacted
		if strings.Contains(name, ".gor") {
			// GoReplay's format cannot say a body was cut at the body
			// cap; export counts such exchanges.
			wf &^= session.FlagResponseTruncated
		} else if w.Response.BodySize != g.Response.BodySize {
			t.Fatalf("%d: body size %d, got %d", i, w.Response.BodySize, g.Response.BodySize)
		}
		if wt != g.Timing || wf != g.Flags&^session.FlagRedacted {
			t.Fatalf("%d: timing %+v flags %v, got %+v %v", i, wt, w.Flags, g.Timing, g.Flags)
		}
	}
}

func byTime(xs []*session.Exchange) []*session.Exchange {
	xs = slices.Clone(xs)
	slices.SortStableFunc(xs, func(a, b *session.Exchange) int {
		return cmp.Or(cmp.Compare(a.Timing.RequestStart, b.Timing.RequestStart), strings.Compare(a.Request.Target, b.Request.Target))
	})
	return xs
}

func TestExportUsage(t *testing.T) {
	dir := t.TempDir()
	rec := writeShop(t, dir, "shop.rpz")
	for _, args := range [][]string{
		{"export", rec}, // no -o
		{"export", rec, "-o", filepath.Join(dir, "x.txt")}, // no format
		{"export", rec, "-o", filepath.Join(dir, "x.har"), "--format", "pcap"},
		{"export", rec, "-o", filepath.Join(dir, "x.har"), "--scheme", "ftp"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%q: exit %d, want %d: %s", args, code, exitUsage, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"export", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "routeFromHAR") {
		t.Errorf("help: exit %d: %s", code, stdout.String())
	}
	if code := run([]string{"export", filepath.Join(dir, "missing.rpz"), "-o", filepath.Join(dir, "x.har")}, &stdout, &stderr); code != exitFailure {
		t.Errorf("missing recording: exit %d", code)
	}
}
