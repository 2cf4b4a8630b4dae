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
	code := r.oauthCode && containsFold(body, "code") && codeExchange(func(name string) (string, bool) {
		return formField(body, name)
	})
	return r.redactFields(body, func(low string) bool {
		return r.form[low] || code && codeField(low)
	}, hit)
}

// exchangeFields are the fields codeExchange reads.
var exchangeFields = []string{"grant_type", "code", "redirect_uri", "code_verifier", "client_id"}

// codeExchange reports whether a request whose fields field looks up (by
// lower-case name, whatever the encoding: form, query or JSON) is an
// OAuth2 token exchange, whose code and PKCE verifier (codeField) get
// tokens for whoever presents them first (RFC 6749, 4.1.3; RFC 7636). It
// is one when its grant_type is authorization_code or, for the providers
// whose token endpoints take no grant_type (GitHub's, Slack's), when a
// code comes beside a redirect_uri, code_verifier or client_id. A code
// with another grant_type, or alone (a postal code, an error code), is no
// credential.
func codeExchange(field func(name string) (string, bool)) bool {
	if grant, ok := field("grant_type"); ok {
		return grant == "authorization_code"
	}
	if _, ok := field("code"); !ok {
		return false
	}
	for _, f := range exchangeFields[2:] {
		if _, ok := field(f); ok {
			return true
		}
	}
	return false
}

// codeField names the fields a token exchange makes secret.
func codeField(low string) bool { return low == "code" || low == "code_verifier" }

// formField returns the decoded value of the first field of a form body
// whose name, decoded, is name in any case.
func formField(body []byte, name string) (string, bool) {
	for len(body) > 0 {
		var pair []byte
		pair, body, _ = bytes.Cut(body, []byte{'&'})
		k, v, _ := bytes.Cut(pair, []byte{'='})
		if strings.EqualFold(unescape(k), name) {
			return unescape(v), true
		}
	}
	return "", false
}

// jsonCodeExchange is codeExchange for a JSON request body, whose fields
// are its members at any depth, as the JSON rules find them.
func (r *Redactor) jsonCodeExchange(body []byte) bool {
	found := map[string]string{}
	scanJSON(body, &r.exchangeFields, func(start, end int, key string) {
		if _, ok := found[key]; ok {
			return
		}
		v := string(body[start:end])
		var s string
		if json.Unmarshal(body[start:end], &s) == nil {
			v = s
		}
		found[key] = v
	})
	return codeExchange(func(name string) (string, bool) {
		v, ok := found[name]
		return v, ok
	})
}

// containsFold reports whether b holds the lower-case ASCII s in any case.
func containsFold(b []byte, s string) bool {
	for _, c := range [2]byte{s[0], lowerASCII(s[0]) - 'a' + 'A'} {
		for i := 0; i < len(b); i++ {
			k := bytes.IndexByte(b[i:], c)
			if k < 0 {
				break
			}
			i += k
			if i+len(s) <= len(b) && equalFoldASCII(b[i:i+len(s)], s) {
				return true
			}
		}
	}
	return false
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
