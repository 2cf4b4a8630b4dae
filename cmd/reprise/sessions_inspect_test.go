package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// writeSessionsRecording writes a login, a call and a refresh of one user
// and a call of another, without timelines, so the view recomputes them.
func writeSessionsRecording(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.rpz")
	w, err := session.Create(path, session.Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	form := session.Headers{{Name: "Content-Type", Value: "application/x-www-form-urlencoded"}}
	jsonH := session.Headers{{Name: "Content-Type", Value: "application/json"}}
	xs := []session.Exchange{
		{Request: session.Request{Method: "POST", Target: "/oauth/token", Header: form, Body: []byte("grant_type=password&username=a&password=p")},
			Response: session.Response{Status: 200, Header: jsonH, Body: []byte(`{"access_token":"A1","refresh_token":"R1","expires_in":60}`)}},
		{Request: session.Request{Method: "GET", Target: "/api/x", Header: session.Headers{{Name: "Authorization", Value: "Bearer A1"}}},
			Response: session.Response{Status: 200}},
		{Request: session.Request{Method: "POST", Target: "/oauth/token", Header: form, Body: []byte("grant_type=refresh_token&refresh_token=R1")},
			Response: session.Response{Status: 200, Header: jsonH, Body: []byte(`{"access_token":"A2","refresh_token":"R2","expires_in":60}`)}},
		{Request: session.Request{Method: "GET", Target: "/api/y", Header: session.Headers{{Name: "Cookie", Value: "JSESSIONID=j1"}}},
			Response: session.Response{Status: 200}},
	}
	for i := range xs {
		at := int64(1_700_000_000_000_000_000) + int64(i)*1e9
		xs[i].Timing = session.Timing{RequestStart: at, RequestEnd: at + 1e6, ResponseStart: at + 5e6, ResponseEnd: at + 6e6}
		if err := w.WriteExchange(&xs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSessionsView(t *testing.T) {
	path := writeSessionsRecording(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		session string
		json    bool
		opts    *sessionsOptions
		want    []string // substrings of the output
		wantErr string
	}{
		// The summary at a glance.
		{name: "text", want: []string{"sessions            2 (timelines recomputed)", "refreshes           1 (proactive 1 = 100%", "s-000001"}},
		// One JSON document with stable names.
		{name: "json", json: true, want: []string{`"sessions": 2`, `"proactive_share": 1`, `"top_sessions"`}},
		// One session's timeline, token values shortened only in text.
		{name: "one session", session: "s-000001", want: []string{"session s-000001", "/oauth/token", "-> refresh access_token A2 (was A1), proactive"}},
		// An unknown key says how to list the keys.
		{name: "unknown session", session: "s-000042", wantErr: "inspect --sessions"},
		// Rules given for a recompute are checked as usage errors.
		{name: "bad rule", opts: &sessionsOptions{rules: []string{"cookie"}}, wantErr: "cookie needs a name"},
		// A connection fallback changes who is who.
		{name: "rules", opts: &sessionsOptions{recompute: true, rules: []string{"connection"}}, want: []string{"sessions            1 (timelines recomputed)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ctx
			if tc.opts != nil {
				c = context.WithValue(ctx, sessionsOptionsKey{}, tc.opts)
			}
			var out bytes.Buffer
			err := sessionsView(c, &out, []string{path}, tc.session, tc.json)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tc.json && !json.Valid(out.Bytes()) {
				t.Errorf("not JSON:\n%s", out.String())
			}
		})
	}
}
