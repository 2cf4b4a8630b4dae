package identity

import (
	"bytes"
	"testing"
)

// hasAccessTokenName finds the two names in one pass, as two
// bytes.Contains would.
func TestHasAccessTokenName(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"at the start", `access_token":"x"`},
		{"camel case", `{"accessToken":"x"}`},
		{"after a near miss", `{"success":1,"access":2,"access_token":"x"}`},
		{"suffix only", `{"success_token":"x"}`},
		{"prefix cut", `ccess_token`},
		{"cut at the end", `{"access_toke`},
		{"name cut at the end", `{"acc`},
		{"misspelt", `{"acces_token":"x"}`},
		{"at the very end", `xxaccessToken`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.body)
			want := bytes.Contains(b, []byte("access_token")) || bytes.Contains(b, []byte("accessToken"))
			if got := hasAccessTokenName(b); got != want {
				t.Errorf("hasAccessTokenName(%q) = %v, want %v", tt.body, got, want)
			}
		})
	}
}
