package session

import (
	"errors"
	"io"
	"testing"
)

func TestSessionKeys(t *testing.T) {
	tracked := []Metadata{{}, {SessionRules: []string{"cookie:sid"}}}
	untracked := []Metadata{{Source: "pcap"}}
	cases := []struct {
		name string
		in   string
		md   []Metadata
		want SessionKeys // "" means the name is refused
	}{
		// auto keeps what a tracking capture stored...
		{"auto tracked", "auto", tracked, KeysRecorded},
		// ...and recomputes an import that never tracked.
		{"auto untracked", "auto", untracked, KeysRecompute},
		{"auto no metadata", "auto", nil, KeysRecompute},
		// The explicit choices stand whatever the metadata says.
		{"recorded", "recorded", untracked, KeysRecorded},
		{"recompute", "recompute", tracked, KeysRecompute},
		{"connection", "connection", tracked, KeysConnection},
		// Anything else is refused, including the empty name.
		{"unknown", "cookies", tracked, ""},
		{"empty", "", tracked, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := ParseSessionKeys(c.in)
			if c.want == "" {
				if err == nil {
					t.Fatalf("%q accepted", c.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := k.Resolve(c.md); got != c.want {
				t.Fatalf("Resolve = %q, want %q", got, c.want)
			}
		})
	}
}

func TestWithoutSessions(t *testing.T) {
	boom := errors.New("boom")
	src := &SliceSource{Exchanges: []*Exchange{{Session: "s-1", Tokens: []TokenEvent{{Name: "a"}}}}, Err: boom}
	clear := WithoutSessions(src)
	x, err := clear.Next()
	if err != nil || x.Session != "" || x.Tokens != nil {
		t.Fatalf("got %+v, %v", x, err)
	}
	if _, err := clear.Next(); err != boom {
		t.Fatalf("err = %v, want the source's", err)
	}
	if len(src.Exchanges) != 1 {
		t.Fatal("SliceSource changed its slice")
	}
	if _, err := NewSliceSource().Next(); err != io.EOF {
		t.Fatalf("empty source: %v", err)
	}
}
