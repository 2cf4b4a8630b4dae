package correlate

import (
	"reflect"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

// TestFieldsUndoEveryEncoding: a compressed answer gives the fields of
// the plain one, whichever encoding the body decoder knows it came in
// (identity and compare run the same table).
func TestFieldsUndoEveryEncoding(t *testing.T) {
	plain := []byte(`{"order":{"id":"ord_3f2a9c81"}}`)
	want := Fields(jsonResp(string(plain)))
	if len(want) == 0 {
		t.Fatal("the plain answer has no fields")
	}
	for _, e := range testkit.Encodings(t) {
		t.Run(e.Header, func(t *testing.T) {
			r := jsonResp(string(e.Apply(plain)), "Content-Encoding", e.Header)
			if got := Fields(r); !reflect.DeepEqual(got, want) {
				t.Fatalf("Fields = %v, want %v", got, want)
			}
		})
	}
}
