package correlate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// Credential is one staging login.
type Credential struct {
	User     string
	Password string
}

// CredentialsError says which line of a credentials file is wrong.
type CredentialsError struct {
	Line int
	Err  error
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("credentials line %d: %v", e.Line, e.Err)
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// ErrNoCredentials means a credentials file held no usable line.
var ErrNoCredentials = errors.New("no credentials found: write one user,password pair per line")

// ParseCredentials reads CSV lines "user,password". Blank lines and lines
// starting with '#' are skipped; a first line "user,password" (a header) is
// skipped too.
func ParseCredentials(r io.Reader) ([]Credential, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	var out []Credential
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line, err = pe.Line, pe.Err
			}
			return out, &CredentialsError{Line: line, Err: err}
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != 2 {
			return out, &CredentialsError{Line: line, Err: fmt.Errorf("want 2 fields user,password, got %d", len(rec))}
		}
		if len(out) == 0 && strings.EqualFold(rec[0], "user") && strings.EqualFold(rec[1], "password") {
			continue
		}
		if rec[0] == "" {
			return out, &CredentialsError{Line: line, Err: errors.New("empty user")}
		}
		out = append(out, Credential{User: rec[0], Password: rec[1]})
	}
	if len(out) == 0 {
		return nil, ErrNoCredentials
	}
	return out, nil
}

// ApplyCredentials puts c into a login request: the values of fields named
// like a user (user, username, login, email) and a password (password,
// passwd, pwd) in a form-encoded or JSON body, and the user:password of a
// Basic Authorization header when the body has a password field too. It
// reports whether the request looked like a login (had a password field)
// and so was changed. The recorded request is not modified.
func ApplyCredentials(req *session.Request, c Credential) (session.Request, bool) {
	out := *req
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	changed := false
	pick := func(key string) (string, bool) {
		switch {
		case passwordName(key):
			changed = true
			return c.Password, true
		case userName(key):
			return c.User, true
		}
		return "", false
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		pairs := strings.Split(string(req.Body), "&")
		for _, p := range pairs {
			k, _, _ := strings.Cut(p, "=")
			if k, err := url.QueryUnescape(k); err == nil && passwordName(k) {
				changed = true
			}
		}
		if !changed {
			return out, false
		}
		for i, p := range pairs {
			k, _, _ := strings.Cut(p, "=")
			dk, err := url.QueryUnescape(k)
			if err != nil {
				continue
			}
			if nv, ok := pick(dk); ok {
				pairs[i] = k + "=" + url.QueryEscape(nv)
			}
		}
		out.Body = []byte(strings.Join(pairs, "&"))
	case strings.HasSuffix(mt, "json") || (mt == "" && looksJSON(req.Body)):
		if !jsonValid(req.Body) {
			return out, false
		}
		body := rewriteJSON(req.Body, func(key, v string) (string, bool) { return pick(key) })
		if !changed {
			return out, false
		}
		out.Body = body
		out.BodySize = int64(len(body))
		return out, true
	default:
		return out, false
	}
	out.BodySize = int64(len(out.Body))
	return out, true
}

func passwordName(k string) bool {
	switch strings.ToLower(k) {
	case "password", "passwd", "pwd", "pass":
		return true
	}
	return false
}

func userName(k string) bool {
	switch strings.ToLower(k) {
	case "user", "username", "user_name", "login", "email", "userid", "user_id":
		return true
	}
	return strings.EqualFold(k, "userName")
}
