package redact

import (
	"errors"
	"io"

	"github.com/reprise-tool/reprise/session"
)

// Clear is what FindClear found: whether a recording holds credentials
// in clear.
type Clear struct {
	// Kept says the recording's metadata marks it as made with the
	// defaults off (ClearMark).
	Kept bool
	// Rules are the default rules that would have fired on the sample, in
	// the form of Redactor.Rules: each is a kind of credential found in
	// clear. Empty when the sample holds none.
	Rules []string
	// Sampled is how many exchanges were read.
	Sampled int
}

// Any reports whether the recording holds credentials in clear.
func (c Clear) Any() bool { return c.Kept || len(c.Rules) > 0 }

// FindClear is a cheap check that a recording keeps no credential in
// clear: it looks for ClearMark in the metadata and runs the default rules,
// keyed with a throwaway secret, on the first n exchanges of src (which it
// changes: read them from a file opened for this). A rule that fires found
// a value not yet hashed, as in recordings made before the defaults
// covered every credential, or with --keep-secrets.
func FindClear(meta []session.Metadata, src session.Source, n int) (Clear, error) {
	var c Clear
	for _, m := range meta {
		for _, r := range m.Redaction {
			c.Kept = c.Kept || r == ClearMark
		}
	}
	r, err := New(Config{})
	if err != nil {
		return c, err
	}
	for ; c.Sampled < n; c.Sampled++ {
		x, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var ce *session.CorruptError
			if errors.As(err, &ce) {
				continue
			}
			return c, err
		}
		r.Apply(x)
	}
	c.Rules = r.Redacted()
	return c, nil
}
