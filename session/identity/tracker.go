package identity

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"time"

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
	if len(req.Body) > 0 && post && (loginSeg || refreshSeg || logoutSeg ||
		bytes.Contains(req.Body, []byte("grant_type")) || bytes.Contains(req.Body, []byte("refresh_token")) ||
		matchAny(t.o.loginPaths, ri.path) || matchAny(t.o.refreshPaths, ri.path) || matchAny(t.o.logoutPaths, ri.path)) {
		ri.body = parseTokenBody(req.Body, ri.contentType, ri.encode)
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
		claims, ok := decodeJWT(c.value)
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
			if claims, ok := decodeJWT(c.value); ok {
				if v := claims.claim(c.claim); v != "" {
					k := claimKey(c.claim, v)
					if o := live(t.index[k], ts); o == nil || o == s {
						t.own(s, k)
					}
				}
				if s.tl.Subject == "" {
					s.tl.Subject = claims.Sub
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

// mayIssueToken reports whether a response not otherwise known as a
// token exchange may still carry an OAuth2 access_token: token endpoints
// answer POSTs (RFC 6749, section 3.2), so only POST and PUT answers are
// searched, and the large GET responses of an API cost nothing.
func mayIssueToken(x *session.Exchange) bool {
	if m := x.Request.Method; m != "POST" && m != "PUT" {
		return false
	}
	return bytes.Contains(x.Response.Body, []byte("access_token")) || bytes.Contains(x.Response.Body, []byte("accessToken"))
}

// start opens a new session for x.
func (t *Tracker) start(x *session.Exchange, via string) *state {
	t.seq++
	t.stats.Sessions++
	s := &state{}
	s.tl.Key = fmt.Sprintf("s-%06d", t.seq)
	s.tl.Via = via
	s.tl.Start = x.Timing.RequestStart
	t.active[s.tl.Key] = s
	return s
}

// fallback applies the connection and client rules, in order.
func (t *Tracker) fallback(x *session.Exchange) *state {
	for _, r := range t.o.rules {
		switch r.Kind {
		case RuleConnection:
			if s := live(t.conns[x.Conn.ID], x.Timing.RequestStart); s != nil {
				return s
			}
			s := t.start(x, "connection")
			s.conn, s.cid = true, x.Conn.ID
			t.conns[x.Conn.ID] = s
			return s
		case RuleClient:
			a := x.Conn.Client.Addr()
			if !a.IsValid() {
				continue
			}
			if s := live(t.clients[a], x.Timing.RequestStart); s != nil {
				return s
			}
			s := t.start(x, "client")
			s.cli, s.addr = true, a
			t.clients[a] = s
			return s
		}
	}
	return nil
}

// touch counts x in s.
func (t *Tracker) touch(s *state, x *session.Exchange) {
	s.tl.Exchanges++
	if x.Timing.RequestStart < s.tl.Start || s.tl.Start == 0 {
		s.tl.Start = x.Timing.RequestStart
	}
	if e := endTime(x); e > s.tl.End {
		s.tl.End = e
	}
	if x.Timing.RequestStart > s.lastSeen {
		s.lastSeen = x.Timing.RequestStart
	}
	if x.Response.Status == 401 {
		s.tl.Rejected++
	}
}

// event records ev on x and on s's timeline.
//
// A timeline keeps every login, refresh and logout, but at most
// maxMinorEvents issue and rejected events: a framework that rotates its
// session cookie on every response (or a client that keeps sending a dead
// token) would otherwise make an open session's memory grow with its
// requests. The exchanges keep every event.
func (t *Tracker) event(s *state, x *session.Exchange, ev session.TokenEvent) {
	x.Tokens = append(x.Tokens, ev)
	if ev.Kind == session.TokenIssue || ev.Kind == session.TokenRejected {
		if s.minor >= maxMinorEvents {
			return
		}
		s.minor++
	}
	s.tl.Events = append(s.tl.Events, session.TimelineEvent{At: x.Timing.RequestStart, Index: s.tl.Exchanges - 1, Event: ev})
}

// maxMinorEvents bounds the issue and rejected events a timeline keeps.
const maxMinorEvents = 256

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
		claims, isJWT := decodeJWT(rs.access)
		exp := expiry(claims, isJWT, rs.fields.ExpiresIn, at)
		if claims.Sub != "" {
			s.tl.Subject = claims.Sub
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
		if c, ok := decodeJWT(rt); ok && c.Exp > 0 {
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
		h := fnv.New64a()
		h.Write([]byte(ri.body.Username))
		s.tl.Subject = fmt.Sprintf("user#%016x", h.Sum64())
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

// end marks s as logged out; it is closed once traffic moves past the
// logout, so that requests already under way still find it.
func (t *Tracker) end(s *state, x *session.Exchange) {
	s.tl.Logouts++
	s.tl.EndedBy = "logout"
	s.endedAt = endTime(x)
}

// sweep closes logged-out sessions that traffic has moved past and
// sessions idle for longer than the idle timeout. It runs at most eight
// times per idle period of traffic time, so its cost is spread thin.
func (t *Tracker) sweep() {
	step := int64(t.o.idle) / 8
	if t.now-t.lastSweep < step {
		return
	}
	t.lastSweep = t.now
	for _, s := range t.active {
		switch {
		case s.endedAt != 0 && t.now > s.endedAt:
			t.close(s)
		case t.now-s.lastSeen > int64(t.o.idle):
			s.tl.EndedBy = "idle"
			t.stats.IdleClosed++
			t.close(s)
		}
	}
}

// close forgets s's state and keeps its timeline.
func (t *Tracker) close(s *state) {
	for _, k := range s.keys {
		if t.index[k] == s {
			delete(t.index, k)
		}
	}
	if s.conn && t.conns[s.cid] == s {
		delete(t.conns, s.cid)
	}
	if s.cli && t.clients[s.addr] == s {
		delete(t.clients, s.addr)
	}
	delete(t.active, s.tl.Key)
	t.finished = append(t.finished, s.tl)
}

// Active returns how many sessions hold state now.
func (t *Tracker) Active() int { return len(t.active) }

// Timelines returns the timelines of every session seen so far and not
// yet taken by TakeFinished, closed and open alike, ordered by start time
// and key. Open sessions appear as they stand; they are not closed.
func (t *Tracker) Timelines() []session.Timeline {
	out := make([]session.Timeline, 0, len(t.finished)+len(t.active))
	out = append(out, t.finished...)
	for _, s := range t.active {
		out = append(out, s.tl)
	}
	sortTimelines(out)
	return out
}

// TakeFinished returns the timelines of sessions closed since the last
// call and forgets them, so a long capture can write them out as it goes
// and keep memory bounded by active sessions.
func (t *Tracker) TakeFinished() []session.Timeline {
	out := t.finished
	t.finished = nil
	sortTimelines(out)
	return out
}

// Close closes every open session (as open: EndedBy stays "" unless it
// logged out) and returns all timelines not yet taken.
func (t *Tracker) Close() []session.Timeline {
	for _, s := range t.active {
		t.close(s)
	}
	return t.TakeFinished()
}

// TimelineWriter is the part of a recording writer that stores session
// timelines; session.FileWriter has it.
type TimelineWriter interface {
	WriteTimeline(*session.Timeline) error
}

// WriteFinished writes the timelines of sessions closed so far to w and
// forgets them, so a long capture keeps memory bounded by active
// sessions. With final set it first closes every open session, as at the
// end of a capture.
func (t *Tracker) WriteFinished(w TimelineWriter, final bool) error {
	var tls []session.Timeline
	if final {
		tls = t.Close()
	} else {
		tls = t.TakeFinished()
	}
	for i := range tls {
		if err := w.WriteTimeline(&tls[i]); err != nil {
			return fmt.Errorf("write timeline of session %s: %w", tls[i].Key, err)
		}
	}
	return nil
}

func sortTimelines(tl []session.Timeline) {
	slices.SortFunc(tl, func(a, b session.Timeline) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
}

// respTime is when the server answered: the first response byte, or the
// best earlier time known.
func respTime(x *session.Exchange) int64 {
	for _, v := range []int64{x.Timing.ResponseStart, x.Timing.RequestEnd, x.Timing.RequestStart} {
		if v != 0 {
			return v
		}
	}
	return 0
}

// endTime is when the exchange completed, or the best earlier time known.
func endTime(x *session.Exchange) int64 {
	for _, v := range []int64{x.Timing.ResponseEnd, x.Timing.ResponseStart, x.Timing.RequestEnd, x.Timing.RequestStart} {
		if v != 0 {
			return v
		}
	}
	return 0
}
