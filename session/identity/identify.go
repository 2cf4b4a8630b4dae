package identity

import (
	"bytes"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// This file holds how the tracker recognises who sent a request: the
// credentials it presents, the session they belong to, and the links from
// credentials to sessions.

// readRequest fills ri and t.creds (in rule order) from x's request.
func (t *Tracker) readRequest(x *session.Exchange, ri *reqInfo) {
	t.creds = t.creds[:0]
	req := &x.Request
	ri.path = targetPath(req.Target)
	ri.seg = lastSegment(ri.path)
	var cookieHdrs [4]string
	var autoHdrs [4]nameValue
	nc, na := 0, 0
	for _, h := range req.Header {
		// Switch on the length first: most headers are none of these.
		switch len(h.Name) {
		case len("Authorization"):
			if strings.EqualFold(h.Name, "Authorization") {
				ri.bearer = bearerToken(h.Value)
			}
		case len("Cookie"):
			if nc < len(cookieHdrs) && strings.EqualFold(h.Name, "Cookie") {
				cookieHdrs[nc] = h.Value
				nc++
			}
		case len("Content-Type"):
			if strings.EqualFold(h.Name, "Content-Type") {
				ri.contentType = h.Value
			}
		case len("Content-Encoding"):
			if strings.EqualFold(h.Name, "Content-Encoding") {
				ri.encode = h.Value
			}
		}
		if t.auto && na < len(autoHdrs) && len(h.Name) > 2 && h.Name[1] == '-' && (h.Name[0] == 'x' || h.Name[0] == 'X') && h.Value != "" {
			for _, hn := range sessionHeaderNames {
				if strings.EqualFold(h.Name, hn) {
					autoHdrs[na] = nameValue{hn, h.Value}
					na++
					break
				}
			}
		}
	}
	post := req.Method == "POST" || req.Method == "PUT"
	seg := pathSegments[ri.seg]
	loginSeg, refreshSeg, logoutSeg := seg&segLogin != 0, seg&segRefresh != 0, seg&segLogout != 0
	ri.body.ExpiresIn = -1
	if len(req.Body) > 0 && post {
		named := loginSeg || refreshSeg || logoutSeg || matchAny(t.o.refreshPaths, ri.path) || matchAny(t.o.logoutPaths, ri.path)
		switch {
		case named && isGRPC(x):
			ri.body = grpcTokenFields(x, false)
		case named || bytes.Contains(req.Body, []byte("grant_type")) || bytes.Contains(req.Body, []byte("refresh_token")) ||
			matchAny(t.o.loginPaths, ri.path):
			ri.body = parseTokenBody(req.Body, ri.contentType, ri.encode)
		}
	}
	g := ri.body.GrantType
	ri.sure = g == "refresh_token" || matchAny(t.o.refreshPaths, ri.path)
	ri.refresh = ri.sure || (refreshSeg && post)
	ri.logout = !ri.refresh && (matchAny(t.o.logoutPaths, ri.path) || logoutSeg || (req.Method == "DELETE" && loginSeg))
	ri.login = !ri.refresh && !ri.logout && (g != "" || matchAny(t.o.loginPaths, ri.path) || (loginSeg && post))

	// A refresh token in the body, or the token a revocation names, links
	// the request to its session whatever the rules.
	if ri.refresh && ri.body.RefreshToken != "" {
		ri.sure = true
		t.creds = append(t.creds, cred{kind: "refresh_token", value: ri.body.RefreshToken})
	}
	if ri.logout {
		for _, v := range []string{ri.body.Token, ri.body.RefreshToken} {
			if v != "" {
				t.creds = append(t.creds, cred{kind: "token", value: v})
			}
		}
	}
	for _, r := range t.o.rules {
		switch r.Kind {
		case RuleAuto:
			if ri.bearer != "" {
				t.creds = append(t.creds, cred{kind: "access_token", value: ri.bearer, claim: "sid"})
			}
			for _, h := range autoHdrs[:na] {
				t.creds = append(t.creds, cred{kind: "header:", label: h.name, value: h.value})
			}
			for i := 0; i < nc; i++ {
				forEachCookie(cookieHdrs[i], func(name, value string) bool {
					if value != "" && t.sessionCookie(name) {
						t.creds = append(t.creds, cred{kind: "cookie:", label: name, value: value})
					}
					return true
				})
			}
		case RuleBearer:
			if ri.bearer != "" {
				t.creds = append(t.creds, cred{kind: "access_token", value: ri.bearer, claim: "sid"})
			}
		case RuleJWTClaim:
			if ri.bearer != "" {
				t.creds = append(t.creds, cred{kind: "access_token", value: ri.bearer, claim: r.Name, byClaim: true})
			}
		case RuleCookie:
			for i := 0; i < nc; i++ {
				forEachCookie(cookieHdrs[i], func(name, value string) bool {
					if name == r.Name && value != "" {
						t.creds = append(t.creds, cred{kind: "cookie:", label: name, value: value})
						return false
					}
					return true
				})
			}
		case RuleHeader:
			if v := req.Header.Get(r.Name); v != "" {
				t.creds = append(t.creds, cred{kind: "header:", label: r.Name, value: v})
			}
		case RuleQuery:
			if v := queryParam(req.Target, r.Name); v != "" {
				t.creds = append(t.creds, cred{kind: "query:", label: r.Name, value: v})
			}
		}
	}
}

// live returns s if it may still take requests that start at ts: a
// session that logged out takes only requests already under way when its
// logout completed.
func live(s *state, ts int64) *state {
	if s == nil || (s.endedAt != 0 && ts > s.endedAt) {
		return nil
	}
	return s
}

// lookup finds the session of the request's credentials: first by exact
// token value (which also works on redacted values), then, for bearer
// JWTs seen for the first time, by their sid (or jwt-claim) claim. It
// returns the session and the position in t.creds of the credential that
// found it (-1 for none).
func (t *Tracker) lookup(x *session.Exchange, ri *reqInfo) (*state, int) {
	ts := x.Timing.RequestStart
	for i, c := range t.creds {
		if s := live(t.index[c.value], ts); s != nil {
			return s, i
		}
	}
	for i, c := range t.creds {
		if c.claim == "" {
			continue
		}
		claims, ok := t.decodeJWT(c.value)
		if !ok {
			continue
		}
		v := claims.claim(c.claim)
		if v == "" {
			continue
		}
		if s := live(t.index[claimKey(c.claim, v)], ts); s != nil {
			return s, i
		}
	}
	return nil, -1
}

func claimKey(name, value string) string { return "\x00" + name + "=" + value }

// presented returns the credential that identified the request, or the
// first it presented.
func (t *Tracker) presented(hit int) *cred {
	if hit >= 0 && hit < len(t.creds) {
		return &t.creds[hit]
	}
	if len(t.creds) > 0 {
		return &t.creds[0]
	}
	return nil
}

// link makes every credential the request presented that no live session
// owns point to s, so that a cookie first sent next to a known bearer
// token later finds the same session on its own. Credentials owned by
// another live session are left alone: two users never merge.
func (t *Tracker) link(s *state, hit int) {
	ts := s.lastSeen
	for i := range t.creds {
		c := &t.creds[i]
		if t.index[c.value] == s {
			continue // linked before: nothing new to learn
		}
		if i != hit {
			if o := live(t.index[c.value], ts); o != nil && o != s {
				continue
			}
		}
		t.own(s, c.value)
		if c.claim != "" && !s.authed {
			s.authed = true
		}
		if c.claim != "" {
			if claims, ok := t.decodeJWT(c.value); ok {
				if v := claims.claim(c.claim); v != "" {
					k := claimKey(c.claim, v)
					if o := live(t.index[k], ts); o == nil || o == s {
						t.own(s, k)
					}
				}
				if s.tl.Subject == "" {
					s.tl.Subject = t.claimSubject(claims.Sub)
				}
				if s.exp == 0 && claims.Exp > 0 {
					s.exp = claims.Exp * int64(time.Second)
				}
			}
		}
		if c.kind == "access_token" && s.access == "" {
			s.access = c.value
		}
	}
}

// own points index key k at s, remembering at most maxKeys keys per
// session.
func (t *Tracker) own(s *state, k string) {
	if k == "" {
		return
	}
	if t.index[k] == s {
		return
	}
	t.index[k] = s
	if len(s.keys) >= maxKeys {
		old := s.keys[0]
		if t.index[old] == s {
			delete(t.index, old)
		}
		s.keys = append(s.keys[:0], s.keys[1:]...)
	}
	s.keys = append(s.keys, k)
}

// adopt returns the live session that already owns a token this response
// issues. That happens only when a request using the token was observed
// before the response that issued it (input disorder beyond the reorder
// window); the issuing exchange then joins that session.
func (t *Tracker) adopt(x *session.Exchange, rs *respInfo) *state {
	for _, v := range []string{rs.access, rs.fields.RefreshToken} {
		if s := live(t.index[v], t.now); v != "" && s != nil {
			// Late when the session began after the exchange that issued
			// its token; otherwise the server handed out a token it had
			// issued before (a cached client-credentials token).
			if s.tl.Start >= x.Timing.RequestStart {
				t.stats.LateTokens++
			}
			return s
		}
	}
	return nil
}
