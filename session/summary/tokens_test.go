package summary

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// TestTokenEventsCountExchanges checks that token events are counted per
// exchange and kind, in the full read and in the trailer's quick summary
// alike: a login that issues an access token, a refresh token and a cookie
// is one login, not three.
func TestTokenEventsCountExchanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.rpz")
	w, err := session.Create(path, session.Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	at := int64(1_700_000_000_000_000_000)
	for i, evs := range [][]session.TokenEvent{
		{{Kind: session.TokenLogin, Name: "access_token"}, {Kind: session.TokenLogin, Name: "refresh_token"}, {Kind: session.TokenIssue, Name: "cookie:sid"}},
		{{Kind: session.TokenRefresh, Name: "access_token"}, {Kind: session.TokenRefresh, Name: "refresh_token"}},
		{{Kind: session.TokenLogout}},
		nil,
	} {
		ts := at + int64(i)*1e9
		x := &session.Exchange{
			Conn:     session.Conn{ID: 1},
			Index:    i,
			Request:  session.Request{Method: "POST", Target: "/auth", Proto: "HTTP/1.1"},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200},
			Timing:   session.Timing{RequestStart: ts, RequestEnd: ts, ResponseStart: ts + 1e6, ResponseEnd: ts + 1e6},
			Session:  "s-1",
			Tokens:   evs,
		}
		if err := w.WriteExchange(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"login": 1, "issue": 1, "refresh": 1, "logout": 1}
	full, err := Files(context.Background(), []string{path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	quick, err := Quick([]string{path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Summary{"full": full, "quick": quick} {
		got := map[string]int64{}
		for _, c := range s.TokenEvents {
			got[c.Name] = int64(c.Count)
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s summary: %s = %d, want %d (all: %v)", name, k, got[k], n, got)
			}
		}
	}
}
