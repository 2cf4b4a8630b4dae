package main

import (
	"testing"

	"github.com/spf13/pflag"
)

// The shared --session/--no-sessions flags: what the verbs accept and
// the command-line mistakes they refuse.
func TestSessionFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		opts    int  // tracker options returned
		wantErr bool // a usage mistake
	}{
		// No flag: the default rules, no options.
		{"default", nil, 0, false},
		// Rules given: one option carrying them.
		{"rules", []string{"--session", "cookie:JSESSIONID", "--session", "bearer"}, 1, false},
		// Tracking off and no rules: fine.
		{"off", []string{"--no-sessions"}, 0, false},
		// Rules with tracking off contradict each other.
		{"contradict", []string{"--session", "bearer", "--no-sessions"}, 0, true},
		// A rule of no known kind.
		{"bad rule", []string{"--session", "nonsense:x"}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s sessionFlags
			f := pflag.NewFlagSet("test", pflag.ContinueOnError)
			s.add(f, true)
			if err := f.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			opts, err := s.options()
			if (err != nil) != tc.wantErr || len(opts) != tc.opts {
				t.Fatalf("options() = %d options, %v; want %d, error %v", len(opts), err, tc.opts, tc.wantErr)
			}
		})
	}
}

// Count lists as the summaries print them.
func TestFormatHelpers(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{countList(nil), ""}, // nothing to list
		{countList(map[string]uint64{"tls": 2, "h2": 10}), "h2 10, tls 2"}, // sorted by kind
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
