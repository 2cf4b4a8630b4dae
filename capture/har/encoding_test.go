package har

import (
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// TestToResponseDecodesEveryEncoding: a HAR written from a compressed
// answer holds the decoded text whichever encoding session.DecodeBody
// knows, and the bytes as sent in _encodedText.
func TestToResponseDecodesEveryEncoding(t *testing.T) {
	plain := `{"items":[1,2,3]}`
	for _, e := range testkit.Encodings(t) {
		t.Run(e.Header, func(t *testing.T) {
			body := e.Apply([]byte(plain))
			x := &session.Exchange{Response: session.Response{Status: 200, Body: body, BodySize: int64(len(body)),
				Header: session.Headers{{Name: "Content-Type", Value: "application/json"}, {Name: "Content-Encoding", Value: e.Header}}}}
			r := toResponse(x)
			if r.Content.Text != plain || r.Content.EncodedText == "" {
				t.Fatalf("text %q, encoded %q", r.Content.Text, r.Content.EncodedText)
			}
		})
	}
}
