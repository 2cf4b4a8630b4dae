package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/gor"
	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
)

// replay reads .gor and HAR files in place of a recording: the bundled
// shop recording exported to each and replayed as is against a fresh shop
// sends the same requests per route as the recording itself, and the shop
// sees no violation. The recording's passwords are redacted (and the
// on-the-fly import hashes every credential again, as 'reprise import'
// does), so every run logs in with --credentials, as the replay of the
// recording does in TestReplayRedactedFixture: a replay never sends a
// recorded credential, so a --keep-secrets export would show nothing more.
func TestReplayImportOnTheFly(t *testing.T) {
	if testing.Short() {
		t.Skip("replays against a real shop three times")
	}
	dir := t.TempDir()
	rec := filepath.Join("..", "..", "fixtures", "testdata", "shop.rpz")
	creds := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(creds, []byte("user,password\nstaging-user,shop-demo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type route struct {
		Route    string
		Requests uint64
		Errors   uint64
	}
	var violations *shop.Violations
	replayOf := func(path string) []route {
		t.Helper()
		s := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
		var out, errb bytes.Buffer
		code := run([]string{"replay", path, "--target", s.URL(), "--speed", "10", "--progress", "0", "--credentials", creds, "--json"}, &out, &errb)
		if code != exitOK {
			t.Fatalf("replay %s: exit %d\n%s", path, code, errb.String())
		}
		var rep struct {
			Completed bool
			Routes    []route
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("replay %s: %v\n%s", path, err, out.String())
		}
		st := s.Stats()
		// Judged as TestReplayRedactedFixture judges the recording's
		// replay, which leaves InvalidToken out (it counts 3 there too);
		// every count must then equal the recording's replay.
		if v := st.Violations; v.ExpiredToken != 0 || v.SupersededToken != 0 || v.RefreshReuse != 0 || v.OutOfOrder != 0 ||
			v.MissingToken != 0 || v.AfterLogout != 0 || v.UnknownRefresh != 0 {
			t.Errorf("replay %s: shop violations %+v", path, v)
		}
		if violations == nil {
			violations = &st.Violations
		} else if st.Violations != *violations {
			t.Errorf("replay %s: shop violations %+v, replaying the recording %+v", path, st.Violations, *violations)
		}
		if !rep.Completed || st.Logins != 17 {
			t.Errorf("replay %s: completed %v, %d logins, want the recording's 17", path, rep.Completed, st.Logins)
		}
		return rep.Routes
	}
	want := replayOf(rec)
	if len(want) < 2 {
		t.Fatalf("the recording's replay has routes %+v: the comparison shows nothing", want)
	}
	for _, name := range []string{"shop.gor", "shop.har.gz"} {
		t.Run(name, func(t *testing.T) {
			path := exportFile(t, rec, filepath.Join(dir, name))
			if got := replayOf(path); !reflect.DeepEqual(got, want) {
				t.Errorf("routes replaying %s:\n %+v\nreplaying the recording:\n %+v", name, got, want)
			}
		})
	}
}

// 'inspect --sessions' reads .gor and HAR files too: the sessions the
// import's tracker gives are those it would store, as many as the
// recording's own.
func TestInspectSessionsImport(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join("..", "..", "fixtures", "testdata", "shop.rpz")
	sessions := func(path string) (n int, from string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run([]string{"inspect", "--sessions", "--json", path}, &out, &errb); code != exitOK {
			t.Fatalf("inspect --sessions %s: exit %d: %s", path, code, errb.String())
		}
		var r struct {
			From     string `json:"timelines_from"`
			Sessions int    `json:"sessions"`
		}
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return r.Sessions, r.From
	}
	want, _ := sessions(rec)
	if want == 0 {
		t.Fatal("the recording shows no session: the test shows nothing")
	}
	for _, name := range []string{"shop.gor", "shop.har.gz"} {
		path := exportFile(t, rec, filepath.Join(dir, name))
		if got, from := sessions(path); got != want || from != "recomputed" {
			t.Errorf("inspect --sessions %s: %d sessions (timelines %s), the recording's %d", name, got, from, want)
		}
	}
}

// exportFile runs 'reprise export rec -o path' and returns path.
func exportFile(t *testing.T, rec, path string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run([]string{"export", rec, "-o", path}, &out, &errb); code != exitOK {
		t.Fatalf("export %s: exit %d: %s", path, code, errb.String())
	}
	return path
}

// An import read on the fly is the import's stream: credentials hashed as
// 'reprise import' hashes them, sessions tracked (the metadata names the
// rules, so replay uses the exchanges' own sessions), no start time of its
// own; and a reader that stops early is not left with a loop blocked
// behind it.
func TestOpenInputImport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.gor")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := gor.NewWriter(f)
	const secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl"
	for i := range 50 {
		ts := int64(1767225600e9) + int64(i)*1e9
		x := &session.Exchange{
			Request: session.Request{Method: "GET", Target: fmt.Sprintf("/api/items/%d", i), Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "Host", Value: "shop.local"}, {Name: "Authorization", Value: "Bearer " + secret}}},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200, Reason: "OK", Header: session.Headers{{Name: "Content-Length", Value: "0"}}},
			Timing:   session.Timing{RequestStart: ts, RequestEnd: ts, ResponseStart: ts + 1e6, ResponseEnd: ts + 2e6},
		}
		if err := w.WriteExchange(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(w.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	in, err := openInput(context.Background(), []string{path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if md := in.Metadata(); len(md) != 1 || md[0].Start != 0 || !session.Tracked(md) {
		t.Errorf("metadata %+v: want one, without a start, naming session rules", md)
	}
	x, err := in.Next()
	if err != nil {
		t.Fatal(err)
	}
	if auth := x.Request.Header.Get("Authorization"); strings.Contains(auth, secret) || x.Session == "" {
		t.Errorf("first exchange: Authorization %q, session %q: want the token hashed and a session", auth, x.Session)
	}
	closed := make(chan error, 1)
	go func() { closed <- in.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close after one exchange of 50 did not return")
	}
}
