package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// This file holds what the tracker needs to work on a redacted recording:
// the facts it reads from tokens (a JWT's exp, iat, sub and sid claims)
// come from the redactor, which read them before it replaced the token by
// its keyed hash, and the session's subject is a keyed hash too.

// ClaimsFunc returns the decoded claims set (the JSON of a JWT's middle
// part) of the token that hashed to h, as the redactor saw it before
// redacting; false when h is not a hashed JWT or is no longer known.
type ClaimsFunc func(h string) (claims []byte, ok bool)

// WithRedaction is how a recording loop that redacts before tracking
// hands the tracker what redaction took away. hash keys the session
// subject (a login name or a JWT sub claim), so that nobody can reverse it
// by guessing names, as they could the unkeyed FNV-64 used without it;
// claims gives back the claims of a JWT the tracker now sees hashed, so
// expiries, subjects and sid-keyed sessions come out as on the raw
// traffic.
func WithRedaction(hash func(string) string, claims ClaimsFunc) Option {
	return func(o *options) error {
		if hash == nil || claims == nil {
			return errors.New("identity: WithRedaction needs a hash and a claims function")
		}
		o.subjectHash, o.claims = hash, claims
		return nil
	}
}

// decodeJWT is the package's decodeJWT, which also reads the claims of a
// hashed JWT from the redactor.
func (t *Tracker) decodeJWT(tok string) (jwtClaims, bool) {
	if t.o.claims == nil || looksLikeJWT(tok) || !strings.HasPrefix(tok, "rdct_") {
		return decodeJWT(tok)
	}
	payload, ok := t.o.claims(tok)
	if !ok {
		return jwtClaims{}, false
	}
	claims := jwt.MapClaims{}
	if json.Unmarshal(payload, &claims) != nil {
		return jwtClaims{}, false
	}
	return newClaims(claims), true
}

// userSubject is the subject of a session that logged in as name.
func (t *Tracker) userSubject(name string) string {
	if t.o.subjectHash != nil {
		return "user#" + t.o.subjectHash(name)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return fmt.Sprintf("user#%016x", h.Sum64())
}

// claimSubject is the subject of a session from a JWT sub claim: the
// claim itself (often an e-mail address) unless the recording is
// redacted.
func (t *Tracker) claimSubject(sub string) string {
	if sub == "" || t.o.subjectHash == nil {
		return sub
	}
	return "sub#" + t.o.subjectHash(sub)
}
