package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/check"
	"github.com/reprise-tool/reprise/session"
)

// writeKeysRecording writes three users, each on two connections and known
// by a JSESSIONID cookie, whose exchanges carry coarser stored keys: users
// 1 and 2 share "team-a", user 3 is "team-b". So the four session-keys
// choices give four different answers: 2 sessions as recorded, 3
// recomputed, 6 by connection. rules is the metadata's SessionRules.
func writeKeysRecording(t *testing.T, rules []string) string {
	team := []string{"team-a", "team-a", "team-b"}
	return writeExchanges(t, rules, 12, func(i int, x *session.Exchange) {
		u := i % 3
		x.Conn.ID, x.Index, x.Session = uint64(10*u+i%2+1), 0, team[u]
		x.Request.Target = "/item/" + strconv.Itoa(i)
		x.Request.Header = append(x.Request.Header, session.Header{Name: "Cookie", Value: fmt.Sprintf("JSESSIONID=user-%d-0123456789abcdef", u)})
	})
}

// TestSessionKeysAgree runs check, the dry run and the replay itself with
// each --session-keys on a recording with and without SessionRules: the
// sessions check predicts and the dry run prints are the sessions the
// replay plays.
func TestSessionKeysAgree(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	tests := []struct {
		rules []string
		keys  string
		want  int
	}{
		{[]string{"auto"}, "auto", 2}, // tracked at capture: as recorded
		{[]string{"auto"}, "recorded", 2},
		{[]string{"auto"}, "recompute", 3},
		{[]string{"auto"}, "connection", 6},
		{nil, "auto", 3}, // not tracked: recomputed, whatever the exchanges carry
		{nil, "recorded", 2},
		{nil, "recompute", 3},
		{nil, "connection", 6},
	}
	dry := regexp.MustCompile(`sessions +(\d+),`)
	for _, tc := range tests {
		t.Run(fmt.Sprintf("rules=%v/%s", tc.rules, tc.keys), func(t *testing.T) {
			rec := writeKeysRecording(t, tc.rules)

			var out, errb bytes.Buffer
			run([]string{"check", rec, "--session-keys", tc.keys, "--json"}, &out, &errb)
			var res check.Result
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("check --json: %v\n%s\n%s", err, out.String(), errb.String())
			}

			out.Reset()
			if code := run([]string{"replay", rec, "--target", srv.URL, "--session-keys", tc.keys, "--dry-run"}, &out, &errb); code != exitOK {
				t.Fatalf("dry run: exit %d\n%s", code, errb.String())
			}
			m := dry.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("dry run prints no sessions:\n%s", out.String())
			}

			report := filepath.Join(t.TempDir(), "run.json")
			if code := run([]string{"replay", rec, "--target", srv.URL, "--speed", "max", "--session-keys", tc.keys, "--report", report}, &out, &errb); code != exitOK {
				t.Fatalf("replay: exit %d\n%s", code, errb.String())
			}
			b, err := os.ReadFile(report)
			if err != nil {
				t.Fatal(err)
			}
			var rep replay.Report
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatal(err)
			}

			got := [3]string{strconv.Itoa(res.Recording.Load.Sessions), m[1], strconv.FormatUint(rep.Sessions.Total, 10)}
			if want := strconv.Itoa(tc.want); got != [3]string{want, want, want} {
				t.Errorf("sessions: check %s, dry run %s, replay %s; want %s", got[0], got[1], got[2], want)
			}
		})
	}
}
