package session

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// bodyFilterRecording writes four exchanges, GET and POST in turn, each
// answered with a body naming its index, to a file.
func bodyFilterRecording(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		m := "GET"
		if i%2 == 1 {
			m = "POST"
		}
		body := []byte{'b', '0' + byte(i)}
		ex := &Exchange{
			Conn:     Conn{ID: 1},
			Index:    i,
			Session:  "s",
			Request:  Request{Method: m, Target: "/x", Proto: "HTTP/1.1", Body: []byte("req")},
			Response: Response{Status: 200, Proto: "HTTP/1.1", Header: Headers{{Name: "Content-Type", Value: "text/plain"}}, Body: body, BodySize: int64(len(body))},
			Timing:   Timing{RequestStart: int64(i+1) * 1e6, ResponseEnd: int64(i+1)*1e6 + 10},
		}
		if err := w.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bodies.rpz")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestResponseBodies(t *testing.T) {
	path := bodyFilterRecording(t)
	posts := func(ex *Exchange) bool { return ex.Request.Method == "POST" }
	open := func(t *testing.T, opts ...ReaderOption) *Reader {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		rd, err := NewReader(f, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	openMulti := func(t *testing.T) *MultiReader {
		m, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	for _, tc := range []struct {
		name string
		src  func(t *testing.T) Source
		want string // the response bodies read, "-" for one left out
	}{
		// No filter: every body, as before.
		{"reader without filter", func(t *testing.T) Source { return open(t) }, "b0 b1 b2 b3"},
		// The option, from the first exchange on.
		{"reader option", func(t *testing.T) Source { return open(t, ResponseBodies(posts)) }, "- b1 - b3"},
		// Set on an open reader, as a replay does through the interface.
		{"reader filtered", func(t *testing.T) Source {
			rd := open(t)
			if !FilterResponseBodies(rd, posts) {
				t.Fatal("a Reader does not filter")
			}
			return rd
		}, "- b1 - b3"},
		// A MultiReader's parts: a finished file (one with a trailer)
		// is opened at the first Read, so the filter applies from its
		// first exchange (an unfinished one's is decoded at Open).
		{"multireader filtered", func(t *testing.T) Source {
			m := openMulti(t)
			if !FilterResponseBodies(m, posts) {
				t.Fatal("a MultiReader does not filter")
			}
			return m
		}, "- b1 - b3"},
		// WithoutSessions passes the filter on to what it wraps.
		{"without sessions", func(t *testing.T) Source {
			src := WithoutSessions(open(t))
			if !FilterResponseBodies(src, posts) {
				t.Fatal("WithoutSessions does not pass the filter on")
			}
			return src
		}, "- b1 - b3"},
		// nil keeps every body again.
		{"filter removed", func(t *testing.T) Source {
			rd := open(t, ResponseBodies(posts))
			FilterResponseBodies(rd, nil)
			return rd
		}, "b0 b1 b2 b3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src(t)
			var got []byte
			for {
				ex, err := src.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(got) > 0 {
					got = append(got, ' ')
				}
				if len(ex.Response.Body) == 0 {
					got = append(got, '-')
				} else {
					got = append(got, ex.Response.Body...)
				}
				// What a body left out still says: its size, and the
				// rest of the exchange.
				if ex.Response.BodySize != 2 || ex.Response.Status != 200 || string(ex.Request.Body) != "req" || ex.Response.Header.Get("Content-Type") != "text/plain" {
					t.Errorf("exchange %d: %+v", ex.Index, ex.Response)
				}
			}
			if string(got) != tc.want {
				t.Errorf("bodies %q, want %q", got, tc.want)
			}
		})
	}
	// A source that cannot filter says so, and its consumer drops the
	// bodies itself.
	if FilterResponseBodies(NewSliceSource(), posts) || FilterResponseBodies(WithoutSessions(NewSliceSource()), posts) {
		t.Error("a SliceSource claims to filter")
	}
}
