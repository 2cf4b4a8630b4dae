package redact

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/reprise-tool/reprise/session"
)

// This file holds the default rules (everything that authenticates), the
// JWT finder that works wherever a token turns up, and the store of JWT
// claims read before their tokens were hashed.

// DefaultHeaders returns the header names whose values are hashed by
// default: the authorization headers (every scheme; the scheme word is
// kept) and the API-key and token headers services use instead.
func DefaultHeaders() []string {
	return []string{
		"authorization", "proxy-authorization",
		"x-api-key", "api-key", "apikey", "x-apikey", "x-auth-token", "x-access-token",
		"x-session-token", "x-refresh-token", "x-id-token", "x-amz-security-token",
		"x-goog-api-key", "x-functions-key", "ocp-apim-subscription-key",
	}
}

// DefaultTokenFields returns the form, query and JSON field names hashed
// by default besides the passwords (DefaultFields): OAuth2's tokens and
// the API keys and session tokens home-grown APIs return or take.
func DefaultTokenFields() []string {
	return []string{
		"access_token", "refresh_token", "id_token", "token", "session_token",
		"accesstoken", "refreshtoken", "idtoken", "sessiontoken",
		"api_key", "apikey", "api-key", "client_assertion", "assertion", "subject_token",
	}
}

// ClearMark is the first entry of Metadata.Redaction in a recording made
// with the defaults turned off (--keep-secrets): whoever holds such a file
// may hold working credentials.
const ClearMark = "NONE: credentials kept in clear (--keep-secrets)"

// ClearSecrets reports whether r leaves credentials in clear, its
// defaults being off.
func (r *Redactor) ClearSecrets() bool { return !r.defaults }

// secret hashes v, first keeping the claims of a JWT for the identity
// tracker (see Claims). Every rule hashes through it.
func (r *Redactor) secret(v string) string {
	h, ok := r.recent.get(v)
	if !ok {
		h = r.Hash(v)
		r.recent.put(v, h)
	}
	if strings.HasPrefix(v, jwtStart) {
		// A client sends its token on every request: decode it once.
		if _, known := r.claims.get(h); !known {
			if payload, ok := jwtClaims(v); ok {
				r.claims.put(h, payload)
			}
		}
	}
	return h
}

// Claims returns the claims set (the decoded JSON of the middle part) of
// the JWT that hashed to h, if this Redactor hashed one lately: the
// identity tracker reads expiries and subjects from it after redaction.
// It holds no signature, so it is no credential, and it is never written.
func (r *Redactor) Claims(h string) ([]byte, bool) { return r.claims.get(h) }

// claimStore keeps the claims of the JWTs hashed lately, in two
// generations of at most claimGen entries, so memory stays bounded on a
// capture that runs for days while the tracker, a queue behind the
// redactor, always finds what it needs.
type claimStore struct {
	mu       sync.Mutex
	cur, old map[string][]byte
}

const claimGen = 1 << 15

func (s *claimStore) put(h string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cur[h]; ok {
		return
	}
	if s.cur == nil || len(s.cur) >= claimGen {
		s.old, s.cur = s.cur, make(map[string][]byte)
	}
	s.cur[h] = payload
}

func (s *claimStore) get(h string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.cur[h]; ok {
		return p, true
	}
	p, ok := s.old[h]
	return p, ok
}

// hashCache remembers the hashes of the values hashed lately: a client
// sends the same token and cookies on every request, and an HMAC costs
// more than a map look-up. It is a sync.Map (written once per value, read
// many times, from the hook workers at once) replaced when it holds
// cacheSize values, so memory stays bounded.
type hashCache struct {
	m atomic.Pointer[sync.Map]
	n atomic.Int64
}

const cacheSize = 1 << 14

func (c *hashCache) get(v string) (string, bool) {
	m := c.m.Load()
	if m == nil {
		return "", false
	}
	h, ok := m.Load(v)
	if !ok {
		return "", false
	}
	return h.(string), true
}

func (c *hashCache) put(v, h string) {
	m := c.m.Load()
	if m == nil || c.n.Add(1) > cacheSize {
		m = new(sync.Map)
		c.m.Store(m)
		c.n.Store(0)
	}
	m.Store(strings.Clone(v), h)
}

// jwtStart is how every JWT begins: base64url of `{"`.
const jwtStart = "eyJ"

func isB64URL(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// jwtAt returns the length of the JWT (JWS compact: three base64url parts,
// the first a JSON header naming "alg") starting at s[i], or 0.
func jwtAt(s []byte, i int) int {
	if i > 0 && (isB64URL(s[i-1]) || s[i-1] == '.') {
		return 0 // the middle of something longer
	}
	j := i
	var dots [2]int
	for part := 0; part < 3; part++ {
		start := j
		for j < len(s) && isB64URL(s[j]) {
			j++
		}
		if part < 2 {
			if j-start < 2 || j >= len(s) || s[j] != '.' {
				return 0
			}
			dots[part] = j
			j++
		}
	}
	if j < len(s) && s[j] == '.' {
		return 0 // four parts: not a JWS
	}
	var buf [256]byte
	hdr := buf[:0]
	if n := base64.RawURLEncoding.DecodedLen(dots[0] - i); n <= len(buf) {
		hdr = buf[:n]
	} else {
		hdr = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode(hdr, s[i:dots[0]])
	if err != nil || !bytes.HasPrefix(hdr[:n], []byte(`{"`)) || !bytes.Contains(hdr[:n], []byte(`"alg"`)) {
		return 0
	}
	return j - i
}

// jwtClaims decodes the middle part of the JWT tok.
func jwtClaims(tok string) ([]byte, bool) {
	if jwtAt([]byte(tok), 0) != len(tok) {
		return nil, false
	}
	first := strings.IndexByte(tok, '.')
	second := first + 1 + strings.IndexByte(tok[first+1:], '.')
	p, err := base64.RawURLEncoding.DecodeString(tok[first+1 : second])
	if err != nil || !bytes.HasPrefix(bytes.TrimSpace(p), []byte("{")) {
		return nil, false
	}
	return p, true
}

// redactJWTs replaces every JWT in b by its hash, keeping every other
// byte; it returns b itself when there is none. The search for "eyJ" runs
// at memory speed, so bodies without tokens cost little.
func (r *Redactor) redactJWTs(b []byte, hit func(string)) ([]byte, bool) {
	var out []byte
	last := 0
	for i := 0; i < len(b); {
		// 'J' is rare in text and JSON: a memchr for it, then a look back
		// for "ey", beats a search for "eyJ" by the common 'e'.
		k := bytes.IndexByte(b[i:], 'J')
		if k < 0 {
			break
		}
		if i+k < 2 || b[i+k-2] != 'e' || b[i+k-1] != 'y' {
			i += k + 1
			continue
		}
		i += k - 2
		n := jwtAt(b, i)
		if n == 0 {
			i += len(jwtStart)
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(b))
		}
		out = append(out, b[last:i]...)
		out = append(out, r.secret(string(b[i:i+n]))...)
		i += n
		last = i
		hit("jwt")
	}
	if out == nil {
		return b, false
	}
	return append(out, b[last:]...), true
}

// hasJWTStart reports whether s holds "eyJ", found as redactJWTs finds
// it: a header value seldom holds a 'J', and one IndexByte tells it.
func hasJWTStart(s string) bool {
	for i := 0; ; {
		k := strings.IndexByte(s[i:], 'J')
		if k < 0 {
			return false
		}
		if i += k; i >= 2 && s[i-2] == 'e' && s[i-1] == 'y' {
			return true
		}
		i++
	}
}

// redactJWTString is redactJWTs for a header value or a request-target.
func (r *Redactor) redactJWTString(s string, hit func(string)) (string, bool) {
	if !hasJWTStart(s) {
		return s, false
	}
	b, ok := r.redactJWTs([]byte(s), hit)
	if !ok {
		return s, false
	}
	return string(b), true
}

// digestSecret names the Digest parameters hashed: the response proves the
// password, and the nonces make a captured response replayable.
var digestSecret = map[string]bool{"response": true, "nonce": true, "cnonce": true}

// digest hashes the secret parameters of Digest credentials
// (`username="a", nonce="...", response="..."`), keeping the structure,
// the order and the other parameters.
func (r *Redactor) digest(params string) (string, bool) {
	var b strings.Builder
	changed := false
	for i, p := range splitParams(params) {
		if i > 0 {
			b.WriteByte(',')
		}
		name, val, ok := strings.Cut(p, "=")
		key := strings.ToLower(strings.TrimSpace(name))
		core := strings.TrimSpace(val)
		quoted := len(core) >= 2 && core[0] == '"' && core[len(core)-1] == '"'
		if quoted {
			core = core[1 : len(core)-1]
		}
		if !ok || !digestSecret[key] || core == "" || IsHash(core) {
			b.WriteString(p)
			continue
		}
		h := r.secret(core)
		if quoted {
			h = `"` + h + `"`
		}
		b.WriteString(name + "=" + h)
		changed = true
	}
	return b.String(), changed
}

// splitParams splits auth-params at commas outside quoted strings.
func splitParams(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// redactAuthResponse covers what servers answer with that authenticates:
// the nonce of a Digest challenge (WWW-Authenticate, Proxy-Authenticate),
// hashed as the request that answers it is, and the redirect of an OAuth2
// authorization response (Location: ...?code=...&state=..., or an implicit
// grant's #access_token=...).
func (r *Redactor) redactAuthResponse(name, v string, hit func(string)) (string, bool) {
	switch name {
	case "www-authenticate", "proxy-authenticate":
		t := strings.TrimLeft(v, " \t")
		scheme, params, ok := strings.Cut(t, " ")
		if !ok || !strings.EqualFold(scheme, "digest") {
			return v, false
		}
		d, changed := r.digest(params)
		if changed {
			hit("header:" + name + "(digest)")
		}
		return v[:len(v)-len(t)] + scheme + " " + d, changed
	case "location":
		base, frag, hasFrag := strings.Cut(v, "#")
		nb, changed := r.redactQuery(base, hit)
		if hasFrag {
			nf, ok := r.redactForm([]byte(frag), hit)
			if ok {
				frag, changed = string(nf), true
			}
			nb += "#" + frag
		}
		return nb, changed
	}
	return v, false
}

// redactAuthCode hashes the code of an OAuth2 authorization response (RFC
// 6749, 4.1.2: a query with code and state), in the redirect and in the
// request to the client's redirect URI: it is the credential the token
// exchange then presents.
func (r *Redactor) redactAuthCode(query []byte, hit func(string)) ([]byte, bool) {
	if !bytes.Contains(query, []byte("code=")) || !bytes.Contains(query, []byte("state=")) {
		return query, false
	}
	return r.redactFields(query, func(low string) bool { return low == "code" }, hit)
}

// redirectBody hashes, in the small body of a redirect, the values hashed
// in its Location (an authorization code): servers repeat the location in
// an HTML link.
func (r *Redactor) redirectBody(x *session.Exchange, orig string) {
	now := x.Response.Header.Get("Location")
	body := x.Response.Body
	if now == orig || x.Response.Status/100 != 3 || len(body) == 0 || len(body) > 4096 {
		return
	}
	_, oq, _ := strings.Cut(orig, "?")
	_, nq, _ := strings.Cut(now, "?")
	ov, err1 := url.ParseQuery(oq)
	nv, err2 := url.ParseQuery(nq)
	if err1 != nil || err2 != nil {
		return
	}
	out := body
	for k := range ov {
		if o, n := ov.Get(k), nv.Get(k); o != n && o != "" {
			out = bytes.ReplaceAll(out, []byte(o), []byte(n))
		}
	}
	if !bytes.Equal(out, body) {
		setBody(&x.Response.Body, &x.Response.BodySize, x.Response.Header, out, x.Flags&session.FlagResponseTruncated != 0)
	}
}
