// Package redact replaces secret values in exchanges by keyed hashes at
// capture time, so that a recording made in production carries no
// passwords or (when asked) tokens, yet equal values stay equal: a session
// can still be followed through its hashed token, and replay can still tell
// that two requests carried the same credential.
//
// A value v becomes "rdct_" + base64url(HMAC-SHA256(secret, v)[:12]). The
// secret is generated per recording (crypto/rand) unless the caller gives
// one, and the Redactor never writes it anywhere: without it nobody can test
// a guessed password against a hash in the recording.
//
// The hash depends on the value only, not on where it was found, so a token
// issued in a JSON login response and later sent as "Authorization: Bearer"
// hashes to the same string in both places.
//
// Defaults (unless Config.NoDefaults, the CLI's --keep-secrets): everything
// that authenticates. Authorization and Proxy-Authorization in every scheme
// (the scheme word kept; Digest's response, nonce and cnonce hashed inside
// its structure), the API-key and token headers of DefaultHeaders, the value
// of every cookie, the fields of DefaultFields and DefaultTokenFields in
// JSON and form bodies and query strings, the code and PKCE verifier of an
// OAuth2 token exchange, form-encoded or JSON (codeExchange), JWTs wherever
// they appear, and the values of token events. Compressed bodies are decoded to be redacted (encoded.go).
// The identity tracker still reads JWT claims: Claims gives back the claims
// set of a JWT hashed lately.
package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/reprise-tool/reprise/session"
)

// Prefix starts every redacted value, so readers (and people) recognise a
// hash and never mistake it for the original.
const Prefix = "rdct_"

// hashBytes is how many bytes of the HMAC are kept: 96 bits make accidental
// equality of different values practically impossible within a recording.
const hashBytes = 12

// secretSize is the size of a generated per-recording secret.
const secretSize = 32

// DefaultFields returns the form and JSON field names redacted by default:
// the names login forms and token endpoints use for passwords and client
// secrets.
func DefaultFields() []string {
	return []string{"password", "passwd", "pwd", "client_secret"}
}

// Config says what to redact. Names are compared without regard to case.
type Config struct {
	// Headers are header names whose values are hashed. For Authorization
	// and Proxy-Authorization the scheme ("Bearer ", "Basic ") is kept and
	// only the credentials are hashed.
	Headers []string
	// Cookies are cookie names whose values are hashed in Cookie and
	// Set-Cookie headers.
	Cookies []string
	// FormFields are field names hashed in application/x-www-form-urlencoded
	// bodies (request and response) and in the request-target's query.
	FormFields []string
	// JSONFields are object member names whose values are hashed in JSON
	// bodies, at any depth.
	JSONFields []string
	// NoDefaults turns off the default rules (DefaultFields in forms and
	// JSON, and Basic credentials in Authorization).
	NoDefaults bool
	// Secret keys the hash. Nil means generate one; it is never written to
	// the recording.
	Secret []byte
}

// ErrShortSecret means a given secret is too short to key the hash safely.
var ErrShortSecret = errors.New("redaction secret must be at least 16 bytes; leave it empty to generate one per recording")

// Redactor applies a Config to exchanges. It is safe for concurrent use.
type Redactor struct {
	headers map[string]bool // lower-case names
	cookies map[string]bool
	form    map[string]bool
	json    map[string]bool
	basic   bool // hash Basic credentials even when Authorization is not named

	// The defaults beyond named rules (see New): every cookie, JWTs
	// wherever they are, the code of an OAuth2 authorization_code grant,
	// and every token event.
	defaults, allCookies, jwt, oauthCode bool
	claims                               claimStore
	recent                               hashCache

	// Header names a rule may name, by length and first letter, to pass
	// over the others (Host, Date, Content-Type...) without folding them;
	// and the rule each named header hits ("header:" and its name).
	headerShape [64]uint32
	headerRule  map[string]string
	// The form rules' longest name, and "cookie:" and the name of each
	// named cookie.
	formMaxLen int
	cookieRule map[string]string

	jsonNames jsonNames // r.json, indexed for the body pre-check
	// For a JSON token exchange (codeExchange): a pre-check for "code",
	// the fields that tell an exchange, and r.json with the code fields.
	codeNames, exchangeFields, exchangeNames jsonNames

	pool sync.Pool // of hash.Hash keyed with the secret

	mu   sync.Mutex
	seen map[string]bool // rule names that matched at least once
}

// New returns a Redactor for cfg.
func New(cfg Config) (*Redactor, error) {
	secret := cfg.Secret
	if secret == nil {
		secret = make([]byte, secretSize)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("generate redaction secret: %w", err)
		}
	} else if len(secret) < 16 {
		return nil, ErrShortSecret
	} else {
		secret = bytes.Clone(secret)
	}
	r := &Redactor{
		headers: set(cfg.Headers),
		cookies: set(cfg.Cookies),
		form:    set(cfg.FormFields),
		json:    set(cfg.JSONFields),
		seen:    map[string]bool{},
	}
	for _, m := range []map[string]bool{r.headers, r.cookies, r.form, r.json} {
		if m[""] {
			return nil, errors.New("redaction rule with an empty name; give a header, cookie or field name")
		}
	}
	if !cfg.NoDefaults {
		for _, f := range append(DefaultFields(), DefaultTokenFields()...) {
			r.form[f] = true
			r.json[f] = true
		}
		for _, h := range DefaultHeaders() {
			r.headers[h] = true
		}
		r.basic = true
		r.defaults, r.allCookies, r.jwt, r.oauthCode = true, true, true, true
	}
	r.headerRule = map[string]string{}
	for h := range r.headers {
		r.headerRule[h] = "header:" + h
	}
	shapes := []string{"authorization", "cookie", "set-cookie", "www-authenticate", "proxy-authenticate", "location"}
	for h := range r.headers {
		shapes = append(shapes, h)
	}
	for _, h := range shapes {
		r.addHeaderShape(h)
	}
	r.cookieRule = map[string]string{}
	for c := range r.cookies {
		r.cookieRule[c] = "cookie:" + c
	}
	for f := range r.form {
		r.formMaxLen = max(r.formMaxLen, len(f))
	}
	r.formMaxLen = max(r.formMaxLen, len("code_verifier"))
	r.jsonNames = newJSONNames(r.json)
	if r.oauthCode {
		r.codeNames = newJSONNames(set([]string{"code"}))
		r.exchangeFields = newJSONNames(set(exchangeFields))
		withCode := set([]string{"code", "code_verifier"})
		for f := range r.json {
			withCode[f] = true
		}
		r.exchangeNames = newJSONNames(withCode)
	}
	r.pool.New = func() any { return &hasher{mac: hmac.New(sha256.New, secret)} }
	return r, nil
}

func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(strings.TrimSpace(n))] = true
	}
	return m
}

// Rules lists the rules in force, e.g. "header:authorization",
// "json:password", sorted.
func (r *Redactor) Rules() []string {
	var out []string
	add := func(kind string, m map[string]bool) {
		for n := range m {
			out = append(out, kind+":"+n)
		}
	}
	add("header", r.headers)
	add("cookie", r.cookies)
	add("form", r.form)
	add("json", r.json)
	if r.basic && !r.headers["authorization"] {
		out = append(out, "header:authorization(basic)")
	}
	if r.allCookies {
		out = append(out, "cookie:*")
	}
	if r.jwt {
		out = append(out, "jwt")
	}
	if r.oauthCode {
		out = append(out, "form:code(authorization_code)", "json:code(authorization_code)")
	}
	sort.Strings(out)
	return out
}

// Redacted lists the rules that matched at least once so far, sorted, in
// the form of Rules. It is what Metadata.Redaction records: names only,
// never values.
func (r *Redactor) Redacted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.seen))
	for n := range r.seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Hash returns the redacted form of v. Equal values give equal hashes
// under one Redactor.
func (r *Redactor) Hash(v string) string {
	h := r.pool.Get().(*hasher)
	h.mac.Reset()
	h.buf = append(h.buf[:0], v...)
	h.mac.Write(h.buf)
	var sum [sha256.Size]byte
	b := h.mac.Sum(sum[:0])
	var out [len(Prefix) + 16]byte
	copy(out[:], Prefix)
	base64.RawURLEncoding.Encode(out[len(Prefix):], b[:hashBytes])
	if cap(h.buf) <= 64<<10 {
		r.pool.Put(h)
	}
	return string(out[:])
}

// hasher is a keyed HMAC with a buffer for the value, pooled so that a
// hash costs one allocation (the result).
type hasher struct {
	mac hash.Hash
	buf []byte
}

// IsHash reports whether v looks like a value this package produced.
func IsHash(v string) bool {
	return len(v) == len(Prefix)+16 && strings.HasPrefix(v, Prefix)
}

// Apply redacts x in place and reports whether anything changed. When it
// did, it sets session.FlagRedacted, and when a body changed it updates
// BodySize and a Content-Length header that described the whole body.
// Bodies it cannot read (compressed) get a warning on the exchange instead.
func (r *Redactor) Apply(x *session.Exchange) bool {
	// The rules hit, kept on the stack: an exchange hits a few.
	var arr [8]string
	hits := arr[:0]
	hit := func(rule string) { hits = append(hits, rule) }

	if t, ok := r.redactQuery(x.Request.Target, hit); ok {
		x.Request.Target = t
	}
	if r.jwt {
		if t, ok := r.redactJWTString(x.Request.Target, hit); ok {
			x.Request.Target = t
		}
	}
	r.redactHeaders(x.Request.Header, hit)
	loc := x.Response.Header.Get("Location")
	r.redactHeaders(x.Response.Header, hit)
	if r.defaults && loc != "" {
		r.redirectBody(x, loc)
	}
	if b, ok, warn := r.redactBody(x.Request.Header, x.Request.Body, x.Flags&session.FlagRequestTruncated != 0, true, hit); ok || warn != "" {
		if ok {
			setBody(&x.Request.Body, &x.Request.BodySize, x.Request.Header, b, x.Flags&session.FlagRequestTruncated != 0)
		}
		if warn != "" {
			x.Warnings = append(x.Warnings, "request "+warn)
		}
	}
	if b, ok, warn := r.redactBody(x.Response.Header, x.Response.Body, x.Flags&session.FlagResponseTruncated != 0, false, hit); ok || warn != "" {
		if ok {
			setBody(&x.Response.Body, &x.Response.BodySize, x.Response.Header, b, x.Flags&session.FlagResponseTruncated != 0)
		}
		if warn != "" {
			x.Warnings = append(x.Warnings, "response "+warn)
		}
	}
	r.redactTokens(x.Tokens, hit)
	if len(hits) == 0 {
		return false
	}
	x.Flags |= session.FlagRedacted
	r.mu.Lock()
	for _, h := range hits {
		if !r.seen[h] {
			r.seen[h] = true
		}
	}
	r.mu.Unlock()
	return true
}

// redactTokens hashes the values of token events whose token a rule
// covers, so a tracker that ran before redaction leaves no raw token
// behind: "cookie:NAME" follows the cookie rules, "header:NAME" the header
// rules, and a bare name ("access_token") the JSON and form rules. The
// hash equals the one in the header or body the token came from.
func (r *Redactor) redactTokens(evs []session.TokenEvent, hit func(string)) {
	for i := range evs {
		ev := &evs[i]
		name := strings.ToLower(ev.Name)
		covered := r.defaults // every token is a credential
		switch {
		case strings.HasPrefix(name, "cookie:"):
			covered = covered || r.allCookies || r.cookies[strings.TrimPrefix(name, "cookie:")]
		case strings.HasPrefix(name, "header:"):
			covered = covered || r.headers[strings.TrimPrefix(name, "header:")]
		default:
			covered = covered || r.json[name] || r.form[name]
		}
		if !covered {
			continue
		}
		for _, v := range []*string{&ev.Value, &ev.Prev} {
			if *v != "" && !IsHash(*v) {
				*v = r.secret(*v)
				hit("token:" + name)
			}
		}
	}
}

func setBody(body *[]byte, size *int64, h session.Headers, b []byte, truncated bool) {
	delta := int64(len(b) - len(*body))
	*body = b
	*size += delta
	if truncated {
		return
	}
	for i := range h {
		if strings.EqualFold(h[i].Name, "Content-Length") {
			h[i].Value = strconv.FormatInt(*size, 10)
		}
	}
}

func (r *Redactor) redactHeaders(h session.Headers, hit func(string)) {
	var buf [64]byte
	for i := range h {
		if r.mayNameHeader(h[i].Name) {
			r.redactHeader(&h[i], buf[:0], hit)
		}
		if r.jwt {
			if v, ok := r.redactJWTString(h[i].Value, hit); ok {
				h[i].Value = v
			}
		}
	}
}

// redactHeader applies the rules that go by a header's name.
func (r *Redactor) redactHeader(f *session.Header, buf []byte, hit func(string)) {
	low := lowerName(buf, f.Name)
	switch {
	case r.headers[string(low)]:
		name := string(low)
		if v, ok := r.credentials(name, f.Value); ok {
			f.Value = v
			hit(r.headerRule[name])
		}
	case r.basic && string(low) == "authorization":
		scheme, _, _ := strings.Cut(strings.TrimSpace(f.Value), " ")
		if strings.EqualFold(scheme, "basic") {
			if v, ok := r.credentials("authorization", f.Value); ok {
				f.Value = v
				hit("header:authorization(basic)")
			}
		}
	case string(low) == "cookie" && (len(r.cookies) > 0 || r.allCookies):
		if v, ok := r.redactCookie(f.Value, hit); ok {
			f.Value = v
		}
	case string(low) == "set-cookie" && (len(r.cookies) > 0 || r.allCookies):
		if v, ok := r.redactSetCookie(f.Value, hit); ok {
			f.Value = v
		}
	}
	if r.defaults {
		if v, ok := r.redactAuthResponse(string(low), f.Value, hit); ok {
			f.Value = v
		}
	}
}

// addHeaderShape records the length and first letter of the lower-case
// header name h for mayNameHeader. Other names need nothing: a header
// that strings.ToLower makes one of them starts with the same byte that
// is no letter, or is as long, 64 bytes or more, or holds non-ASCII
// bytes (only those can fold to a name of another length, or to
// non-ASCII), and mayNameHeader lets all those through.
func (r *Redactor) addHeaderShape(h string) {
	if len(h) > 0 && len(h) < len(r.headerShape) && 'a' <= h[0] && h[0] <= 'z' {
		r.headerShape[len(h)] |= 1 << (h[0] & 31)
	}
}

// mayNameHeader reports whether a rule may name a header called name:
// false for most of an exchange's headers, told by their length and
// first byte, before any case folding. It is true, to be looked at, for
// long names, for a first byte that is not an ASCII letter, and for
// names with non-ASCII bytes, which strings.ToLower could fold to ASCII
// of another length (K, the Kelvin sign, folds to k).
func (r *Redactor) mayNameHeader(name string) bool {
	if len(name) == 0 || len(name) >= len(r.headerShape) {
		return true
	}
	if c := name[0] | 0x20; c < 'a' || c > 'z' || r.headerShape[len(name)]&(1<<(c&31)) != 0 {
		return true
	}
	return !isASCII(name)
}

// lowerName appends strings.ToLower(s) to buf, folding ASCII in place so
// that looking a header name up costs no allocation (every exchange has a
// dozen).
func lowerName(buf []byte, s string) []byte {
	if !isASCII(s) {
		return append(buf, strings.ToLower(s)...)
	}
	for i := 0; i < len(s); i++ {
		buf = append(buf, lowerASCII(s[i]))
	}
	return buf
}

// isASCII reports whether s is all ASCII: only then is strings.ToLower
// of it a byte-by-byte fold of the same length.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// credentials hashes a header value; for the authorization headers it
// keeps the scheme so "Bearer <token>" stays recognisably a bearer token.
func (r *Redactor) credentials(name, v string) (string, bool) {
	if v == "" || IsHash(v) {
		return v, false
	}
	if name == "authorization" || name == "proxy-authorization" {
		t := strings.TrimLeft(v, " \t")
		if scheme, cred, ok := strings.Cut(t, " "); ok && isToken(scheme) {
			lead := v[:len(v)-len(t)]
			cred = strings.TrimLeft(cred, " ")
			if cred == "" || IsHash(cred) {
				return v, false
			}
			if strings.EqualFold(scheme, "digest") {
				d, ok := r.digest(cred)
				return lead + scheme + " " + d, ok
			}
			return lead + scheme + " " + r.secret(cred), true
		}
	}
	return r.secret(v), true
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// redactCookie rewrites "a=1; b=2", hashing the values of named cookies
// (every cookie, by default) and keeping every other byte. It builds the
// new value in one go, on the stack while it is short.
func (r *Redactor) redactCookie(v string, hit func(string)) (string, bool) {
	var buf [256]byte
	var out []byte
	last := 0
	for start := 0; start <= len(v); {
		end := strings.IndexByte(v[start:], ';')
		if end < 0 {
			end = len(v)
		} else {
			end += start
		}
		if vs, ve, h, ok := r.cookieValue(v[start:end], hit); ok {
			if out == nil {
				out = buf[:0]
			}
			out = append(out, v[last:start+vs]...)
			out = append(out, h...)
			last = start + ve
		}
		start = end + 1
	}
	if out == nil {
		return v, false
	}
	return string(append(out, v[last:]...)), true
}

// redactSetCookie hashes the value of a named cookie in a Set-Cookie
// header; attributes (Path, Expires, ...) stay as they were.
func (r *Redactor) redactSetCookie(v string, hit func(string)) (string, bool) {
	first, _, _ := strings.Cut(v, ";")
	vs, ve, h, ok := r.cookieValue(first, hit)
	if !ok {
		return v, false
	}
	return v[:vs] + h + v[ve:], true
}

// cookieValue finds, in the name=value pair part, the value to hash when
// a rule names the cookie, and returns where it is in part and its hash.
// Surrounding spaces and quotes stay: what is inside them is hashed.
func (r *Redactor) cookieValue(part string, hit func(string)) (start, end int, h string, ok bool) {
	eq := strings.IndexByte(part, '=')
	if eq < 0 {
		return 0, 0, "", false
	}
	rule := ""
	if len(r.cookies) > 0 {
		var buf [64]byte
		rule = r.cookieRule[string(lowerName(buf[:0], strings.TrimSpace(part[:eq])))]
	}
	if rule == "" && !r.allCookies {
		return 0, 0, "", false
	}
	start = eq + 1
	end = start + len(strings.TrimRight(part[start:], " \t"))
	if end-start >= 2 && part[start] == '"' && part[end-1] == '"' {
		start, end = start+1, end-1
	}
	core := part[start:end]
	if core == "" || IsHash(core) {
		return 0, 0, "", false
	}
	if rule == "" {
		rule = "cookie:*" // names only of the cookies asked for: they can be many
	}
	hit(rule)
	return start, end, r.secret(core), true
}

// redactQuery applies the form rules to the query of a request-target,
// where tokens and passwords also travel (?access_token=...).
func (r *Redactor) redactQuery(target string, hit func(string)) (string, bool) {
	path, query, ok := strings.Cut(target, "?")
	if !ok || len(r.form) == 0 {
		return target, false
	}
	frag := ""
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query, frag = query[:i], query[i:]
	}
	if !r.queryMayHave(query) {
		return target, false
	}
	out, changed := r.redactForm([]byte(query), hit)
	if r.oauthCode {
		if b, ok := r.redactAuthCode(out, hit); ok {
			out, changed = b, true
		}
	}
	if !changed {
		return target, false
	}
	return path + "?" + string(out) + frag, true
}

// queryMayHave reports whether a field of query may be one the form
// rules, or a token exchange's, hash: false means redactForm and
// redactAuthCode would change nothing. Most queries (?page=2&sort=price)
// are told without decoding or allocating; a name with an escape, a '+'
// or a non-ASCII byte is left to them.
func (r *Redactor) queryMayHave(query string) bool {
	var buf [32]byte
	for len(query) > 0 {
		pair := query
		if i := strings.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			query = ""
		}
		name, _, _ := strings.Cut(pair, "=")
		for i := 0; i < len(name); i++ {
			if c := name[i]; c == '%' || c == '+' || c >= 0x80 {
				return true
			}
		}
		if len(name) > r.formMaxLen {
			continue
		}
		low := lowerName(buf[:0], name) // on the heap past 32 bytes
		if r.form[string(low)] || r.oauthCode && codeField(string(low)) {
			return true
		}
	}
	return false
}

// redactBody picks the body rule by Content-Type: form-encoded or JSON,
// then hashes the JWTs left anywhere in the body. A compressed body of
// those types (or any body, for JWTs, when small) is decoded, redacted and
// encoded again (see redactEncoded). It returns the new body and true
// when it changed, or a warning when the body might hold secrets but could
// not be read. request says it is a request's body, which may be a token
// exchange.
func (r *Redactor) redactBody(h session.Headers, body []byte, truncated, request bool, hit func(string)) ([]byte, bool, string) {
	if len(body) == 0 {
		return nil, false, ""
	}
	ct := strings.ToLower(h.Get("Content-Type"))
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	isForm := mt == "application/x-www-form-urlencoded" && len(r.form) > 0
	isJSON := (mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/json" ||
		mt == "" && looksJSON(body)) && len(r.json) > 0
	if !isForm && !isJSON && !r.jwt {
		return nil, false, ""
	}
	if enc := strings.TrimSpace(strings.ToLower(h.Get("Content-Encoding"))); enc != "" && enc != "identity" {
		if !isForm && !isJSON && !(r.jwt && strings.HasPrefix(mt, "text/")) {
			return nil, false, ""
		}
		return r.redactEncoded(h, enc, body, truncated, isForm, isJSON, request, hit)
	}
	return r.redactPlain(body, isForm, isJSON, request, hit)
}

// redactPlain applies the field rules, then the JWT finder, to a body
// that is not compressed. Only a request's JSON body is looked at as a
// token exchange: no response is one, and it spares the large bodies
// another search.
func (r *Redactor) redactPlain(body []byte, isForm, isJSON, request bool, hit func(string)) ([]byte, bool, string) {
	out, changed := body, false
	switch {
	case isForm:
		out, changed = r.redactForm(body, hit)
	case isJSON:
		// The escapes and runes that send a body to the scanner are the
		// same for every name: look for them once.
		scan := r.jsonNames.unusual(body)
		names := &r.jsonNames
		// Every field that makes a code an exchange's (exchangeFields
		// but code) has an underscore: a body without one is none.
		if request && r.oauthCode && (scan || bytes.IndexByte(body, '_') >= 0 && r.codeNames.anchored(body)) && r.jsonCodeExchange(body) {
			names, scan = &r.exchangeNames, true
		}
		if scan || names.anchored(body) {
			if b, ok, _ := r.redactJSONNames(body, names, hit); ok {
				out, changed = b, true
			}
		}
	}
	if r.jwt {
		if b, ok := r.redactJWTs(out, hit); ok {
			out, changed = b, true
		}
	}
	if !changed {
		return nil, false, ""
	}
	return out, true, ""
}

// looksJSON tells a JSON object or array sent without a Content-Type.
func looksJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}
