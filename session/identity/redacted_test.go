package identity

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// TestWithRedaction: on hashed tokens the tracker reads a JWT's claims
// from the redactor (the expiry lands on the token event as on the raw
// token) and keys the subject with the redaction's hash; without the
// option a hashed JWT is an opaque token.
func TestWithRedaction(t *testing.T) {
	tok := jwtFor(t, "ann@example.com", "", 0, 60)
	hash := func(v string) string { return "rdct_h(" + v + ")" }
	hashed := "rdct_hashed-jwt-1"
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	claims := func(h string) ([]byte, bool) { return payload, h == hashed }
	login := func() []*xbuilder {
		return []*xbuilder{
			xb(0, "POST", "/auth/login").json(`{"username":"ann","password":"rdct_pw"}`).rjson(tokenJSON(hashed, "rdct_refresh-1", 60)),
			xb(time.Second, "GET", "/api/cart").bearer(hashed),
		}
	}
	xs, tr := track(t, []Option{WithRedaction(hash, claims)}, login()...)
	tl := timelineOf(t, tr, xs[1].Session)
	if want := "sub#" + hash("ann@example.com"); tl.Subject != want {
		t.Errorf("subject %q, want %q", tl.Subject, want)
	}
	if ev := xs[0].Tokens[0]; ev.ExpiresAt != t0+60*int64(time.Second) {
		t.Errorf("access token expiry %d, want the JWT's exp", ev.ExpiresAt)
	}

	// Without the claims: the login name's keyed hash, and the expiry
	// from expires_in (the same here, counted from the response).
	xs, tr = track(t, []Option{WithRedaction(hash, func(string) ([]byte, bool) { return nil, false })}, login()...)
	if tl := timelineOf(t, tr, xs[1].Session); tl.Subject != "user#"+hash("ann") {
		t.Errorf("subject %q, want the keyed hash of the login name", tl.Subject)
	}
	if _, err := NewTracker(WithRedaction(nil, claims)); err == nil {
		t.Error("WithRedaction without a hash accepted")
	}
}
