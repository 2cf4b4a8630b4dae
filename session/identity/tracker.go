package identity

import (
	"net/netip"

	"github.com/reprise-tool/reprise/session"
)

// Tracker assigns exchanges to sessions and records token lineage. It is
// fed exchanges in order of Timing.RequestStart (Annotate reorders a
// stream that is slightly out of order) and is not safe for concurrent
// use: one goroutine owns it, as in the capture pipeline.
//
// Memory holds the state of sessions active within the idle timeout (their
// current tokens, at most maxKeys index entries each) plus the Timelines of
// closed sessions until TakeFinished hands them out.
type Tracker struct {
	o       options
	auto    bool
	tokens  bool            // some rule other than the connection and client fallbacks
	cookies map[string]bool // cookie names of cookie:NAME rules
	// cookieClass memoises isSessionCookie.
	cookieClass map[string]bool

	seq     int
	active  map[string]*state
	index   map[string]*state // token values and "\x00claim=value" keys
	conns   map[uint64]*state
	clients map[netip.Addr]*state

	finished  []session.Timeline
	now       int64
	lastSweep int64
	stats     Stats

	creds []cred      // scratch, reused per exchange
	sets  []setCookie // scratch
}

// Stats counts what the tracker did, so that nothing is attributed (or
// left out) silently; inspect shows them when it recomputes sessions.
type Stats struct {
	Exchanges    uint64 `json:"exchanges"`
	Attributed   uint64 `json:"attributed"`
	Unattributed uint64 `json:"unattributed"` // no rule found an identity
	Sessions     uint64 `json:"sessions"`
	IdleClosed   uint64 `json:"idle_closed"`
	// LateTokens counts tokens issued by a response after a request that
	// started earlier had already used them: the input was out of order
	// by more than the reorder window. Each such request may sit in a
	// session of its own.
	LateTokens uint64 `json:"late_tokens"`
}

// maxKeys bounds the token values remembered per session: enough for
// in-flight requests still carrying a token that a refresh replaced, and
// for a cookie that rotates on every response, without growing with the
// session's length.
const maxKeys = 32

// state is one open session.
type state struct {
	tl   session.Timeline
	keys []string // index keys owned, oldest first
	conn bool     // owns t.conns[connID]
	cli  bool     // owns t.clients[addr]
	cid  uint64
	addr netip.Addr

	authed    bool   // logged in, or identified by a token rather than an anonymous cookie
	access    string // current access token (or the credential that stands for it)
	accessAt  int64  // when it was issued
	exp       int64  // its expiry, Unix ns; 0 unknown
	refresh   string // current refresh token
	cookieVal []nameValue
	last401   int64 // response start of the last 401 for the current token
	lastSeen  int64
	endedAt   int64 // response end of the logout; 0 while open
	minor     int   // issue and rejected events on the timeline
}

type nameValue struct{ name, value string }

func (s *state) cookie(name string) string {
	for _, c := range s.cookieVal {
		if c.name == name {
			return c.value
		}
	}
	return ""
}

func (s *state) setCookie(name, value string) {
	for i := range s.cookieVal {
		if s.cookieVal[i].name == name {
			s.cookieVal[i].value = value
			return
		}
	}
	s.cookieVal = append(s.cookieVal, nameValue{name, value})
}

// cred is one credential a request presented. Its name is kept in two
// parts so that reading a request allocates nothing.
type cred struct {
	kind    string // "access_token", "refresh_token", "token", "cookie:", "header:", "query:"
	label   string // the cookie, header or query parameter name
	value   string
	claim   string // for a bearer: the JWT claim to try when the token is unknown ("sid", or a jwt-claim rule's name)
	byClaim bool   // found by a jwt-claim rule
}

// name is the event name: "access_token", "cookie:JSESSIONID", ...
func (c *cred) name() string { return c.kind + c.label }

// via says what identifies a session started from the credential.
func (c *cred) via() string {
	switch c.kind {
	case "refresh_token":
		return "refresh"
	case "access_token", "token":
		if c.byClaim {
			return "claim:" + c.claim
		}
		return "bearer"
	}
	return c.name()
}

// NewTracker returns a Tracker configured by opts.
func NewTracker(opts ...Option) (*Tracker, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	t := &Tracker{
		o:           o,
		cookies:     map[string]bool{},
		cookieClass: map[string]bool{},
		active:      map[string]*state{},
		index:       map[string]*state{},
		conns:       map[uint64]*state{},
		clients:     map[netip.Addr]*state{},
	}
	for _, r := range o.rules {
		switch r.Kind {
		case RuleAuto:
			t.auto = true
		case RuleCookie:
			t.cookies[r.Name] = true
		}
		if !r.fallback() {
			t.tokens = true
		}
	}
	return t, nil
}

// Rules returns the rules in force, for the recording's metadata.
func (t *Tracker) Rules() []string {
	out := make([]string, len(t.o.rules))
	for i, r := range t.o.rules {
		out[i] = r.String()
	}
	return out
}

// Stats returns the counters so far.
func (t *Tracker) Stats() Stats { return t.stats }

// reqInfo is what the tracker reads from a request.
type reqInfo struct {
	path, seg           string
	bearer              string
	contentType, encode string
	body                tokenFields
	login, refresh      bool
	// sure is set when the request is certainly a refresh (a refresh
	// grant, a refresh token in the body, a --refresh-path); a POST to a
	// /refresh-like path is one only if its answer issues tokens.
	sure   bool
	logout bool
}

// respInfo is what it reads from the response.
type respInfo struct {
	ok      bool // a response with status below 400
	status  int
	fields  tokenFields
	access  string // the access token issued, if any (access_token, or token at a login)
	cookies []setCookie
	headers []nameValue // header:NAME rule values set by the response
}

func (r *respInfo) issues() bool {
	if r.access != "" || r.fields.RefreshToken != "" || len(r.headers) > 0 {
		return true
	}
	for _, c := range r.cookies {
		if !c.Deleted {
			return true
		}
	}
	return false
}

// Observe assigns x to a session: it sets x.Session ("" when no rule
// found an identity) and appends to x.Tokens the token events the
// exchange caused. Exchanges must come in order of Timing.RequestStart;
// small disorder only matters when a token is used before the response
// that issued it is observed (see Annotate).
func (t *Tracker) Observe(x *session.Exchange) {
	ts := x.Timing.RequestStart
	if ts > t.now {
		t.now = ts
	}
	t.sweep()
	t.stats.Exchanges++

	var ri reqInfo
	t.readRequest(x, &ri)
	var rs respInfo
	t.readResponse(x, &ri, &rs)
	login := ri.login && rs.ok && rs.issues()
	// A /refresh-like path that neither presents a refresh token nor gets
	// one is some other action ("POST /feeds/refresh").
	ri.refresh = ri.refresh && (ri.sure || (rs.ok && rs.issues()))

	var s *state
	hit := -1
	if t.tokens {
		s, hit = t.choose(x, &ri, &rs, login)
	} else {
		// Only fallback rules: the connection or client is the session;
		// token events are still recorded in it.
		s = t.fallback(x)
	}
	if s == nil {
		x.Session = ""
		t.stats.Unattributed++
		return
	}
	t.touch(s, x)
	if t.tokens {
		t.link(s, hit)
	}
	switch {
	case ri.refresh:
		if rs.ok && rs.issues() {
			t.refreshed(s, x, &ri, &rs)
		} else if rs.status >= 400 {
			t.event(s, x, session.TokenEvent{Kind: session.TokenRejected, Name: "refresh_token", Value: ri.body.RefreshToken})
		}
	case login || rs.access != "":
		// An access token outside a login or refresh exchange (an implicit
		// grant, a token exchange) counts as a login too.
		t.loggedIn(s, x, &ri, &rs)
	default:
		if rs.status == 401 {
			ev := session.TokenEvent{Kind: session.TokenRejected}
			c := t.presented(hit)
			if c != nil {
				ev.Name, ev.Value = c.name(), c.value
			}
			// A 401 for a token that a refresh already replaced (a request
			// in flight on another connection) calls for no refresh: only
			// one for the current token makes the next refresh reactive.
			if c == nil || c.kind != "access_token" || s.access == "" || c.value == s.access {
				// The response start, not its end: the client may act on
				// the status line before a recorder stamps the last byte.
				s.last401 = respTime(x)
			}
			t.event(s, x, ev)
		}
		t.cookieChanges(s, x, &ri, &rs)
		if ri.logout && rs.ok && s.endedAt == 0 {
			ev := session.TokenEvent{Kind: session.TokenLogout}
			if c := t.presented(hit); c != nil {
				ev.Name, ev.Value = c.name(), c.value
			}
			t.event(s, x, ev)
			t.end(s, x)
		}
	}
	x.Session = s.tl.Key
	t.stats.Attributed++
}

// choose finds or starts the session of an exchange under token rules,
// and returns the position in t.creds of the credential that found it
// (-1 when none did, or when the exchange begins a session of its own).
func (t *Tracker) choose(x *session.Exchange, ri *reqInfo, rs *respInfo, login bool) (*state, int) {
	found, hit := t.lookup(x, ri)
	s := found
	switch {
	case ri.refresh:
		if s == nil {
			s = t.adopt(x, rs)
		}
		if s == nil {
			s = t.start(x, "refresh")
			s.authed = true
		}
	case login:
		if a := t.adopt(x, rs); a != nil {
			s = a
		} else if s == nil || s.authed || s.endedAt != 0 {
			// A login always begins a session, unless the client was
			// browsing anonymously under a cookie that the login upgrades.
			s = t.start(x, "login")
		}
	default:
		if s == nil && rs.issues() {
			s = t.adopt(x, rs)
			if s == nil {
				via := "login"
				if len(rs.cookies) > 0 && rs.access == "" {
					via = "cookie:" + rs.cookies[0].Name
				} else if len(rs.headers) > 0 {
					via = "header:" + rs.headers[0].name
				}
				s = t.start(x, via)
			}
		}
		if s == nil && len(t.creds) > 0 {
			s = t.start(x, t.creds[0].via())
			if t.creds[0].kind != "cookie:" {
				s.authed = true
			}
		}
		if s == nil {
			s = t.fallback(x)
		}
	}
	// Credentials are linked to the session they found; a login that
	// begins a new session must not take the old session's credential.
	if s != found {
		hit = -1
	}
	return s, hit
}
