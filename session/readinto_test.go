package session

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestReadIntoIsNext checks that ReadInto decodes what Next hands out,
// for each source it serves (a Reader, a MultiReader, WithoutSessions
// over either), and that it declines the others.
func TestReadIntoIsNext(t *testing.T) {
	exs, _ := benchCorpus()
	exs = exs[:300]
	for i, ex := range exs {
		ex.Session = "s" // so that WithoutSessions has something to clear
		if i%3 == 0 {
			ex.Tokens = []TokenEvent{{Kind: TokenIssue, Name: "t", Value: "v"}}
		}
	}
	var rec bytes.Buffer
	if err := writeRecording(&rec, exs); err != nil {
		t.Fatal(err)
	}
	path := bodyFilterRecording(t)
	sources := []struct {
		name string
		open func() Source
	}{
		{"Reader", func() Source { return mustReader(t, rec.Bytes()) }},
		{"WithoutSessions(Reader)", func() Source { return WithoutSessions(mustReader(t, rec.Bytes())) }},
		{"MultiReader", func() Source { return mustOpen(t, path) }},
		{"WithoutSessions(MultiReader)", func() Source { return WithoutSessions(mustOpen(t, path)) }},
	}
	for _, s := range sources {
		t.Run(s.name, func(t *testing.T) {
			next, into := s.open(), s.open()
			read, ok := ReadInto(into)
			if !ok {
				t.Fatal("ReadInto declined")
			}
			n := 0
			for ; ; n++ {
				want, werr := next.Next()
				got := new(Exchange)
				gerr := read(got)
				if !errors.Is(gerr, werr) {
					t.Fatalf("exchange %d: error %v, Next's %v", n, gerr, werr)
				}
				if werr != nil {
					break
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("exchange %d: ReadInto\n%+v\nNext\n%+v", n, got, want)
				}
			}
			if n == 0 {
				t.Fatal("nothing read")
			}
		})
	}
	if _, ok := ReadInto(NewSliceSource(exs...)); ok {
		t.Error("ReadInto took a SliceSource, which cannot decode into an exchange")
	}
	if _, ok := ReadInto(WithoutSessions(NewSliceSource(exs...))); ok {
		t.Error("ReadInto took WithoutSessions over a SliceSource")
	}
}

func mustReader(t *testing.T, b []byte) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustOpen(t *testing.T, path string) *MultiReader {
	t.Helper()
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
