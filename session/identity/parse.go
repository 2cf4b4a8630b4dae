package identity

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/reprise-tool/reprise/session"
)

// This file holds the small parsers the tracker needs: Cookie and
// Set-Cookie headers, bearer tokens, JWT claims (decoded without
// verification), and OAuth2 token requests and responses in JSON or form
// encoding. All of them take bytes from the wire and must never panic;
// each has a fuzzer in identity_fuzz_test.go.

// maxTokenBody bounds how much of a (possibly compressed) token request or
// response body is decoded; token exchanges are small, and a forged body
// must not make the tracker allocate without limit.
const maxTokenBody = 256 << 10

// forEachCookie calls fn for every name=value pair of a Cookie header value
// without allocating. Pairs are separated by ';'; surrounding spaces and a
// pair of double quotes around the value are removed. It stops early when
// fn returns false.
func forEachCookie(header string, fn func(name, value string) bool) {
	for header != "" {
		var pair string
		if i := strings.IndexByte(header, ';'); i >= 0 {
			pair, header = header[:i], header[i+1:]
		} else {
			pair, header = header, ""
		}
		pair = strings.TrimSpace(pair)
		name, value, ok := strings.Cut(pair, "=")
		if !ok || name == "" {
			continue
		}
		name = strings.TrimSpace(name)
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		if !fn(name, value) {
			return
		}
	}
}

// setCookie is the part of a Set-Cookie header the tracker needs.
type setCookie struct {
	Name, Value string
	// Deleted is true for a cookie removed by the server: an empty value,
	// Max-Age zero or negative, or an Expires in the past.
	Deleted bool
	// ExpiresAt is the cookie's expiry in Unix ns; 0 for a session cookie.
	ExpiresAt int64
}

// setCookieName returns the cookie name of a Set-Cookie header value
// cheaply, so that the full parse runs only for cookies that matter.
func setCookieName(line string) string {
	name, _, _ := strings.Cut(line, "=")
	return strings.TrimSpace(name)
}

// parseSetCookie parses one Set-Cookie header value; now (Unix ns) is the
// time of the response, used to turn Max-Age into an absolute expiry.
func parseSetCookie(line string, now int64) (setCookie, bool) {
	c, err := http.ParseSetCookie(line)
	if err != nil {
		// net/http is strict about cookie values; fall back to the name and
		// raw value so that an odd (but equal-comparable) value still links.
		name, rest, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return setCookie{}, false
		}
		value, _, _ := strings.Cut(rest, ";")
		value = strings.TrimSpace(value)
		return setCookie{Name: strings.TrimSpace(name), Value: value, Deleted: value == ""}, true
	}
	sc := setCookie{Name: c.Name, Value: c.Value}
	switch {
	case c.MaxAge < 0:
		sc.Deleted = true
	case c.MaxAge > 0:
		sc.ExpiresAt = now + int64(c.MaxAge)*int64(time.Second)
	case !c.Expires.IsZero():
		sc.ExpiresAt = c.Expires.UnixNano()
		// Expires in the past (the usual "Thu, 01 Jan 1970") deletes.
		if now != 0 && sc.ExpiresAt <= now {
			sc.Deleted = true
		}
	}
	if c.Value == "" {
		sc.Deleted = true
	}
	return sc, true
}

// bearerToken returns the token of an "Authorization: Bearer X" value, or
// "". The scheme is matched without regard to case, as RFC 6750 asks;
// "Token X" (Django REST framework, Rails) and "JWT X" are taken too.
// Basic credentials are not: they name a user, not a session, and would
// merge a user's sessions.
func bearerToken(auth string) string {
	auth = strings.TrimSpace(auth)
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "Token") || strings.EqualFold(scheme, "JWT")) {
		return ""
	}
	return strings.TrimSpace(tok)
}

// looksLikeJWT is a cheap test before decoding: a JWS compact token is
// three base64url parts and its header starts with '{"' ("eyJ").
func looksLikeJWT(tok string) bool {
	return strings.HasPrefix(tok, "eyJ") && strings.Count(tok, ".") == 2
}

// jwtClaims are the claims of a JWT decoded without verification: the
// tracker only needs to tell sessions apart and read expiries, never to
// trust them. ok is false when tok is not a decodable JWT (for example a
// redacted one), and callers then treat it as an opaque token.
type jwtClaims struct {
	Sid, Sub string
	Exp, Iat int64 // Unix seconds; 0 when absent
	all      jwt.MapClaims
}

// claim returns one claim as a string ("" when absent); numbers are
// written without exponent so they compare stably.
func (c jwtClaims) claim(name string) string {
	return claimString(c.all[name])
}

func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func decodeJWT(tok string) (jwtClaims, bool) {
	if !looksLikeJWT(tok) {
		return jwtClaims{}, false
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		return jwtClaims{}, false
	}
	return newClaims(claims), true
}

// newClaims picks the claims the tracker uses out of a decoded set.
func newClaims(claims jwt.MapClaims) jwtClaims {
	c := jwtClaims{all: claims, Sid: claimString(claims["sid"]), Sub: claimString(claims["sub"])}
	if v, ok := claims["exp"].(float64); ok {
		c.Exp = int64(v)
	}
	if v, ok := claims["iat"].(float64); ok {
		c.Iat = int64(v)
	}
	return c
}

// tokenFields are the OAuth2 (RFC 6749) fields of a token request or
// response, whichever encoding carried them.
type tokenFields struct {
	// Response fields.
	AccessToken  string
	RefreshToken string
	IDToken      string
	// Token is a plain "token" or "session_token" field, as many home-grown
	// login endpoints return instead of access_token.
	Token     string
	ExpiresIn int64 // seconds; -1 when absent
	// Request fields.
	GrantType string
	Username  string
}

func (f tokenFields) issues() bool {
	return f.AccessToken != "" || f.RefreshToken != "" || f.Token != ""
}

// parseTokenBody reads token fields from a JSON object or a form-encoded
// body. contentType and encoding are the body's Content-Type and
// Content-Encoding headers; a compressed body is decompressed up to
// maxTokenBody. It never fails: an unreadable body has no fields.
func parseTokenBody(body []byte, contentType, encoding string) tokenFields {
	f := tokenFields{ExpiresIn: -1}
	body = decodeBody(body, encoding)
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return f
	}
	ct := strings.ToLower(contentType)
	switch {
	case trimmed[0] == '{' || strings.Contains(ct, "json"):
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(trimmed))
		d.UseNumber()
		if d.Decode(&m) != nil {
			return f
		}
		f.fromJSON(m)
		if !f.issues() {
			// One level down: {"data": {"access_token": ...}}.
			for _, v := range m {
				if inner, ok := v.(map[string]any); ok {
					f.fromJSON(inner)
					if f.issues() {
						break
					}
				}
			}
		}
	default:
		vals, err := url.ParseQuery(string(trimmed))
		if err != nil && len(vals) == 0 {
			return f
		}
		f.fromForm(vals)
	}
	return f
}

func (f *tokenFields) fromJSON(m map[string]any) {
	str := func(keys ...string) string {
		for _, k := range keys {
			if s, ok := m[k].(string); ok && s != "" {
				return s
			}
		}
		return ""
	}
	setIf := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	setIf(&f.AccessToken, str("access_token", "accessToken"))
	setIf(&f.RefreshToken, str("refresh_token", "refreshToken"))
	setIf(&f.IDToken, str("id_token", "idToken"))
	setIf(&f.Token, str("token", "session_token", "sessionToken", "auth_token", "authToken"))
	setIf(&f.GrantType, str("grant_type", "grantType"))
	setIf(&f.Username, str("username", "user", "email", "login", "client_id"))
	if f.ExpiresIn < 0 {
		for _, k := range []string{"expires_in", "expiresIn"} {
			if n, ok := jsonInt(m[k]); ok {
				f.ExpiresIn = n
				break
			}
		}
	}
}

func jsonInt(v any) (int64, bool) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	case float64:
		return int64(v), true
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, true
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil && x >= 0 && x < 1e12 {
		return int64(x), true
	}
	return 0, false
}

func (f *tokenFields) fromForm(v url.Values) {
	f.AccessToken = v.Get("access_token")
	f.RefreshToken = v.Get("refresh_token")
	f.IDToken = v.Get("id_token")
	f.Token = v.Get("token")
	f.GrantType = v.Get("grant_type")
	for _, k := range []string{"username", "user", "email", "login", "client_id"} {
		if s := v.Get(k); s != "" {
			f.Username = s
			break
		}
	}
	if n, err := strconv.ParseInt(v.Get("expires_in"), 10, 64); err == nil && n >= 0 {
		f.ExpiresIn = n
	}
}

// decodeBody undoes the body's Content-Encoding with session.DecodeBody,
// bounded by maxTokenBody. Token parsing never fails, so an encoding it
// cannot undo, or damage before any byte decoded, gives the bytes as they
// are; a bomb or a cut stream gives the prefix that decoded.
func decodeBody(body []byte, encoding string) []byte {
	out, err := session.DecodeBody(encoding, body, maxTokenBody)
	if err != nil && len(out) == 0 {
		return body
	}
	return out
}

// queryParam returns the first value of query parameter name in a request
// target, unescaped, without allocating when the parameter is absent.
func queryParam(target, name string) string {
	_, q, ok := strings.Cut(target, "?")
	if !ok {
		return ""
	}
	q, _, _ = strings.Cut(q, "#")
	for q != "" {
		var pair string
		if i := strings.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, ""
		}
		k, v, _ := strings.Cut(pair, "=")
		if k == name {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

// targetPath returns the path of a request target: before '?' and
// without a scheme and host for absolute-form targets sent to proxies.
func targetPath(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		rest := target[strings.Index(target, "//")+2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
		return "/"
	}
	return target
}

// lastSegment returns the last non-empty path segment, lower-cased only
// when it is not already (to avoid allocating on the hot path).
func lastSegment(path string) string {
	path = strings.TrimRight(path, "/")
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[i+1:]
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(path)
		}
	}
	return path
}
