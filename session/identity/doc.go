// Package identity tells which session each exchange belongs to, and
// follows the session's tokens as they are issued, refreshed, rejected and
// ended. Capture runs it over live traffic and stores the result in the
// recording (Exchange.Session, Exchange.Tokens and one session.Timeline
// per session); inspect and replay read it, and any recording, old or
// imported, can be given it afresh by running a Tracker over its
// exchanges.
//
// # Rules
//
// A request's identity comes from rules tried in order (ParseRule):
// cookie:NAME, header:NAME, bearer (the Authorization bearer token, and
// for a JWT its sid claim), jwt-claim:NAME, query:NAME, and the fallbacks
// connection and client, used only when no other rule found anything. The
// default, auto, recognises well-known session cookies of many frameworks,
// bearer tokens (JWT or opaque) and a few token headers (X-Auth-Token, ...).
//
// # Lineage
//
// Whatever the rules, tokens are compared as opaque strings, never
// decoded to decide who is who, so lineage works as well on a recording
// whose tokens were replaced by keyed hashes ("rdct_..."), where a JWT
// cannot be decoded. A Tracker keeps an index from every live token value
// to its session:
//
//   - A login (an OAuth2 token response to a password, client_credentials
//     or authorization_code grant; a POST to a /login-like path or a
//     --login-path that issues a token or session cookie) begins a new
//     session, unless the client was browsing anonymously under a cookie,
//     which the login then upgrades. So a user's second login is a second
//     session, and two users never share one.
//   - A refresh (grant_type=refresh_token, a /refresh-like path, a
//     --refresh-path) finds its session by the refresh token it presents,
//     and links the tokens it is given to the same session: rotation
//     chains never split. A refresh is reactive when the session's current
//     token met a 401 before it, proactive otherwise (a 401 for a token a
//     refresh already replaced calls for no refresh); its lead is the old
//     token's expiry (JWT exp, expires_in, or a cookie's Max-Age/Expires)
//     minus the refresh's start, negative when it came after the expiry.
//   - A Set-Cookie that replaces the session cookie is an issue event in
//     the same session; an unchanged one is nothing; a deleted one, or a
//     /logout-like path, is a logout. A logout ends the session: requests
//     already under way when it completed still belong to it, later ones
//     with the old token begin another.
//   - gRPC logins and refreshes are read the same way from their protobuf
//     messages, without a schema (session/pbwire): the token-shaped string
//     fields of the answer are the tokens issued (the first the access
//     token, a second the refresh token), the first of a refresh request
//     the refresh token presented; later calls carry the access token in
//     authorization metadata, which the bearer rule reads. A call's
//     grpc-status decides its success, UNAUTHENTICATED counting as a 401.
//   - A credential first seen next to a known one (a cookie beside a
//     bearer token) is linked to the same session, unless another live
//     session owns it.
//
// # Order
//
// A client can use a token only after the response that issued it, so in
// order of request start a token's issuer always comes before its first
// use. Observe expects that order. Annotate restores it from a source that
// is slightly out of order (capture emits an exchange when its response
// completes) with a bounded reordering window (WithReorderWindow, default
// 2 s, and WithMaxPending). Should a token still be used before its issuer
// is seen, the using request begins a session, the issuing exchange joins
// it, and Stats.LateTokens counts the event.
//
// # Keys
//
// Session keys are "s-" and a six-digit (or longer) sequence number in
// order of each session's first exchange: "s-000001", "s-000002", ...
// They are short enough to type after 'reprise inspect --session', stable
// (the same traffic gives the same keys) and unique within one tracker's
// run, which is one recording. What first identified the session is in
// its Timeline.Via ("login", "refresh", "bearer", "cookie:NAME", ...), and
// how it ended in Timeline.EndedBy ("logout", "idle", or "" while open).
// Recordings made separately may reuse keys; merge them by recomputing.
//
// # Memory
//
// A Tracker holds state only for sessions active within the idle timeout
// (WithIdleTimeout, default 30 minutes of traffic time): their current
// tokens and at most 32 remembered token values each. Closed sessions'
// timelines are kept until TakeFinished (or Close) hands them out.
package identity
