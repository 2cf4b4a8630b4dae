package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// redactForm hashes the values of named fields in a form-encoded body (or
// query string), keeping every other byte: field order, separators and the
// encoding of untouched fields stay as sent. The hash is taken over the
// decoded value, so it equals the hash of the same value found in a header
// or a JSON body.
func (r *Redactor) redactForm(body []byte, hit func(string)) ([]byte, bool) {
	// The code of an OAuth2 authorization_code grant (RFC 6749, 4.1.3)
	// gets tokens for whoever presents it first, with the PKCE verifier.
	code := r.oauthCode && bytes.Contains(body, []byte("grant_type=authorization_code"))
	return r.redactFields(body, func(low string) bool {
		return r.form[low] || code && (low == "code" || low == "code_verifier")
	}, hit)
}

// redactFields is redactForm with the fields to hash named by secret,
// which is given lower-cased names.
func (r *Redactor) redactFields(body []byte, secret func(string) bool, hit func(string)) ([]byte, bool) {
	var out []byte
	changed := false
	start := 0
	for start <= len(body) {
		end := bytes.IndexByte(body[start:], '&')
		if end < 0 {
			end = len(body)
		} else {
			end += start
		}
		pair := body[start:end]
		if k, v, ok := bytes.Cut(pair, []byte{'='}); ok {
			key := unescape(k)
			low := strings.ToLower(key)
			if secret(low) {
				val := unescape(v)
				if val != "" && !IsHash(val) {
					if out == nil {
						out = make([]byte, 0, len(body)+16)
						out = append(out, body[:start]...)
					}
					out = append(out, k...)
					out = append(out, '=')
					out = append(out, r.secret(val)...)
					changed = true
					hit("form:" + low)
					goto next
				}
			}
		}
		if out != nil {
			out = append(out, pair...)
		}
	next:
		if end < len(body) && out != nil {
			out = append(out, '&')
		}
		start = end + 1
	}
	if !changed {
		return body, false
	}
	return out, true
}

func unescape(b []byte) string {
	s, err := url.QueryUnescape(string(b))
	if err != nil {
		return string(b)
	}
	return s
}

// errNotJSON wraps a JSON syntax error met while redacting; the values
// found before it are still redacted.
var errNotJSON = errors.New("body is not valid JSON")

// jsonValue returns the quoted hash replacing raw, or false for null and
// values already hashed.
func (r *Redactor) jsonValue(raw []byte) ([]byte, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false
	}
	v := string(raw)
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		if s == "" || IsHash(s) {
			return nil, false
		}
		v = s
	}
	return []byte(strconv.Quote(r.secret(v))), true
}
