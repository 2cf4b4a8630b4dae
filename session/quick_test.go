package session

import (
	"bytes"
	"io"
	"reflect"
	"testing"
)

func TestQuickRoundTrip(t *testing.T) {
	c := newCorpus(1)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var want []*Exchange
	for range 3000 {
		ex := c.next()
		want = append(want, ex)
		if err := w.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var raw int64
	for _, ex := range want {
		raw += rawSize(ex)
	}
	t.Logf("raw %d file %d ratio %.2f", raw, buf.Len(), float64(raw)/float64(buf.Len()))
	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("meta %+v", r.Metadata())
	for i := 0; ; i++ {
		ex, err := r.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("got %d", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ex, want[i]) {
			t.Fatalf("%d: got %+v\nwant %+v", i, ex, want[i])
		}
	}
	t.Logf("stats %+v meta %+v", r.Stats(), r.Metadata())
}
