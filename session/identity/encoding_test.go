package identity

import (
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

// TestTokenBodyEveryEncoding: a token answer compressed any way the body
// decoder knows gives its tokens (compare and correlate run the same
// table).
func TestTokenBodyEveryEncoding(t *testing.T) {
	plain := []byte(`{"access_token":"a","refresh_token":"r","expires_in":60}`)
	for _, e := range testkit.Encodings(t) {
		t.Run(e.Header, func(t *testing.T) {
			f := parseTokenBody(e.Apply(plain), "application/json", e.Header)
			if f.AccessToken != "a" || f.RefreshToken != "r" || f.ExpiresIn != 60 {
				t.Fatalf("got %+v", f)
			}
		})
	}
}
