package identity

import (
	"bytes"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// This file holds how the tracker reads responses: the tokens and session
// cookies they issue, logins, refreshes, and token expiry.

// readResponse fills rs from x's response.
func (t *Tracker) readResponse(x *session.Exchange, ri *reqInfo, rs *respInfo) {
	resp := &x.Response
	rs.status = resp.Status
	rs.ok = resp.Status > 0 && resp.Status < 400 && x.Flags&session.FlagNoResponse == 0
	rs.fields.ExpiresIn = -1
	if !rs.ok {
		return
	}
	var ctype, enc string
	t.sets = t.sets[:0]
	at := respTime(x)
	for _, h := range resp.Header {
		switch len(h.Name) {
		case len("Set-Cookie"):
			if !strings.EqualFold(h.Name, "Set-Cookie") {
				break
			}
			name := setCookieName(h.Value)
			if (t.auto && t.sessionCookie(name)) || t.cookies[name] {
				if sc, ok := parseSetCookie(h.Value, at); ok {
					t.sets = append(t.sets, sc)
				}
			}
		case len("Content-Type"):
			if strings.EqualFold(h.Name, "Content-Type") {
				ctype = h.Value
			}
		case len("Content-Encoding"):
			if strings.EqualFold(h.Name, "Content-Encoding") {
				enc = h.Value
			}
		}
		// The auto rule's token headers, when a response sets a new one.
		if t.auto && len(h.Name) > 2 && h.Name[1] == '-' && (h.Name[0] == 'x' || h.Name[0] == 'X') && h.Value != "" {
			for _, hn := range sessionHeaderNames {
				if strings.EqualFold(h.Name, hn) {
					rs.headers = append(rs.headers, nameValue{hn, h.Value})
					break
				}
			}
		}
	}
	rs.cookies = t.sets
	for _, r := range t.o.rules {
		if r.Kind == RuleHeader {
			if v := resp.Header.Get(r.Name); v != "" {
				rs.headers = append(rs.headers, nameValue{r.Name, v})
			}
		}
	}
	tokenExchange := ri.login || ri.refresh || ri.body.GrantType != ""
	if isGRPC(x) {
		// A refused call is an HTTP 200 whose grpc-status says so;
		// UNAUTHENTICATED is gRPC's 401.
		st, has := grpcStatus(x)
		rs.ok = !has || st == 0
		if has && st == grpcUnauthenticated {
			rs.status = 401
		}
		if rs.ok && tokenExchange && len(resp.Body) > 0 {
			rs.fields = grpcTokenFields(x, true)
			rs.access = rs.fields.AccessToken
		}
		return
	}
	if len(resp.Body) > 0 && (tokenExchange || mayIssueToken(x)) {
		rs.fields = parseTokenBody(resp.Body, ctype, enc)
		rs.access = rs.fields.AccessToken
		if rs.access == "" && tokenExchange {
			rs.access = rs.fields.Token
		}
	}
}

// sessionCookie is isSessionCookie with a memo: a service uses a handful
// of cookie names, and each request carries several of them.
func (t *Tracker) sessionCookie(name string) bool {
	if v, ok := t.cookieClass[name]; ok {
		return v
	}
	v := isSessionCookie(name)
	if len(t.cookieClass) < 4096 {
		t.cookieClass[name] = v
	}
	return v
}

// readsResponseBody reports whether Observe may read x's response body:
// only a token exchange's (a POST or PUT, or a request to a login or
// refresh path the options name) or an answer to a POST or PUT
// (mayIssueToken). A reader may leave out every other body.
func (t *Tracker) readsResponseBody(x *session.Exchange) bool {
	if m := x.Request.Method; m == "POST" || m == "PUT" {
		return true
	}
	p := targetPath(x.Request.Target)
	return matchAny(t.o.loginPaths, p) || matchAny(t.o.refreshPaths, p)
}

// mayIssueToken reports whether a response not otherwise known as a
// token exchange may still carry an OAuth2 access_token: token endpoints
// answer POSTs (RFC 6749, section 3.2), so only POST and PUT answers are
// searched, and the large GET responses of an API cost nothing.
func mayIssueToken(x *session.Exchange) bool {
	if m := x.Request.Method; m != "POST" && m != "PUT" {
		return false
	}
	return hasAccessTokenName(x.Response.Body)
}

// hasAccessTokenName reports whether b contains "access_token" or
// "accessToken", in one pass over b (a large POST answer was read twice).
func hasAccessTokenName(b []byte) bool {
	for i := 1; i < len(b); {
		j := bytes.Index(b[i:], []byte("ccess"))
		if j < 0 {
			return false
		}
		i += j
		if rest := b[i+5:]; b[i-1] == 'a' && (bytes.HasPrefix(rest, []byte("_token")) || bytes.HasPrefix(rest, []byte("Token"))) {
			return true
		}
		i++
	}
	return false
}

// expiry works out when an issued access token expires: from its JWT
// exp claim when it could be decoded, else from expires_in counted from
// the response.
func expiry(c jwtClaims, isJWT bool, expiresIn int64, at int64) int64 {
	if isJWT && c.Exp > 0 {
		return c.Exp * int64(time.Second)
	}
	if expiresIn >= 0 && at != 0 {
		return at + expiresIn*int64(time.Second)
	}
	return 0
}

// issue records the tokens rs carries as events of kind k on s, links
// them to s and makes them s's current tokens. Proactive and lead apply
// to refreshes.
func (t *Tracker) issue(s *state, x *session.Exchange, k session.TokenEventKind, rs *respInfo, refreshPrev string, proactive bool, lead int64) {
	at := respTime(x)
	if rs.access != "" {
		claims, isJWT := t.decodeJWT(rs.access)
		exp := expiry(claims, isJWT, rs.fields.ExpiresIn, at)
		if claims.Sub != "" {
			s.tl.Subject = t.claimSubject(claims.Sub)
		}
		ev := session.TokenEvent{Kind: k, Name: "access_token", Value: rs.access, ExpiresAt: exp, Proactive: proactive, Lead: lead}
		if k == session.TokenRefresh {
			ev.Prev = s.access
		}
		t.event(s, x, ev)
		t.own(s, rs.access)
		if claims.Sid != "" {
			t.own(s, claimKey("sid", claims.Sid))
		}
		s.access, s.accessAt, s.exp = rs.access, at, exp
	}
	if rt := rs.fields.RefreshToken; rt != "" {
		var exp int64
		if c, ok := t.decodeJWT(rt); ok && c.Exp > 0 {
			exp = c.Exp * int64(time.Second)
		}
		ev := session.TokenEvent{Kind: k, Name: "refresh_token", Value: rt, ExpiresAt: exp, Proactive: proactive, Lead: lead}
		if k == session.TokenRefresh {
			ev.Prev = refreshPrev
		}
		t.event(s, x, ev)
		t.own(s, rt)
		s.refresh = rt
	}
	if it := rs.fields.IDToken; it != "" {
		t.own(s, it)
	}
	for _, c := range rs.cookies {
		name := "cookie:" + c.Name
		prev := s.cookie(c.Name)
		if c.Deleted || c.Value == prev {
			continue
		}
		ev := session.TokenEvent{Kind: k, Name: name, Value: c.Value, ExpiresAt: c.ExpiresAt, Proactive: proactive, Lead: lead}
		if k == session.TokenRefresh {
			ev.Prev = prev
		}
		t.event(s, x, ev)
		t.own(s, c.Value)
		s.setCookie(c.Name, c.Value)
		if rs.access == "" && s.access == "" {
			// A cookie-only session: the cookie is the credential whose
			// expiry a refresh races.
			s.exp, s.accessAt = c.ExpiresAt, at
		}
	}
	for _, h := range rs.headers {
		ev := session.TokenEvent{Kind: k, Name: "header:" + h.name, Value: h.value, Proactive: proactive, Lead: lead}
		t.event(s, x, ev)
		t.own(s, h.value)
	}
}

// loggedIn records a login on s.
func (t *Tracker) loggedIn(s *state, x *session.Exchange, ri *reqInfo, rs *respInfo) {
	s.authed = true
	s.tl.Logins++
	if s.tl.Subject == "" && ri.body.Username != "" {
		s.tl.Subject = t.userSubject(ri.body.Username)
	}
	s.last401 = 0
	t.issue(s, x, session.TokenLogin, rs, "", false, 0)
}

// refreshed records a refresh on s. It is reactive when a 401 in the
// session completed after the current token was issued and before the
// refresh began, and proactive otherwise; Lead (negative after expiry)
// says how early it came.
func (t *Tracker) refreshed(s *state, x *session.Exchange, ri *reqInfo, rs *respInfo) {
	s.authed = true
	ts := x.Timing.RequestStart
	var lead int64
	if s.exp != 0 {
		lead = s.exp - ts
	}
	reactive := s.last401 != 0 && s.last401 >= s.accessAt && s.last401 <= ts
	proactive := !reactive
	s.tl.Refreshes++
	if proactive {
		s.tl.Proactive++
	} else {
		s.tl.Reactive++
	}
	prev := ri.body.RefreshToken
	t.issue(s, x, session.TokenRefresh, rs, prev, proactive, lead)
}

// cookieChanges records session cookies set or deleted outside a login or
// refresh: a new value is an issue event linked to the session (Prev the
// value it replaced), an unchanged one only updates the expiry, and a
// deletion ends the session as a logout would. On a --refresh-path, or a
// /refresh-like path, a replaced cookie counts as a refresh.
func (t *Tracker) cookieChanges(s *state, x *session.Exchange, ri *reqInfo, rs *respInfo) {
	for _, c := range rs.cookies {
		prev := s.cookie(c.Name)
		switch {
		case c.Deleted:
			if prev == "" || s.endedAt != 0 {
				continue
			}
			t.event(s, x, session.TokenEvent{Kind: session.TokenLogout, Name: "cookie:" + c.Name, Value: prev})
			t.end(s, x)
			return
		case c.Value == prev:
			if c.ExpiresAt != 0 && s.access == "" {
				s.exp = c.ExpiresAt
			}
		default:
			t.event(s, x, session.TokenEvent{Kind: session.TokenIssue, Name: "cookie:" + c.Name, Value: c.Value, Prev: prev, ExpiresAt: c.ExpiresAt})
			t.own(s, c.Value)
			s.setCookie(c.Name, c.Value)
		}
	}
	for _, h := range rs.headers {
		if t.index[h.value] == s {
			continue // echoed back unchanged
		}
		t.event(s, x, session.TokenEvent{Kind: session.TokenIssue, Name: "header:" + h.name, Value: h.value})
		t.own(s, h.value)
	}
}
