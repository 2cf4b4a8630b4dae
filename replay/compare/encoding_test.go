package compare

import (
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// TestDiffUndoesEveryEncoding: an answer compressed any way the body
// decoder knows says the same as the plain one (identity and correlate
// run the same table).
func TestDiffUndoesEveryEncoding(t *testing.T) {
	plain := `{"a":1,"b":[1,2]}`
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range testkit.Encodings(t) {
		t.Run(e.Header, func(t *testing.T) {
			body := e.Apply([]byte(plain))
			p := &session.Response{Status: 200, Body: body, BodySize: int64(len(body)), Header: session.Headers{
				{Name: "Content-Type", Value: "application/json"}, {Name: "Content-Encoding", Value: e.Header}}}
			if d := c.Diff(p, jsonResp(200, plain), nil); len(d) != 0 {
				t.Fatalf("differences %q", paths(d))
			}
		})
	}
}
