// Package shadow mirrors live traffic to a shadow (staging, candidate)
// deployment as it happens, keeps the mirrored sessions valid there, and
// compares the shadow's answers with the real ones.
//
// # Sources
//
// A Mirror reads any session.Source of live exchanges (Run); it imports
// nothing that captures traffic. The CLI ('reprise shadow', 'reprise
// proxy --shadow') wires one to it: the recording proxy (capture/proxy:
// the proxy forwards to the real upstream and every exchange it forwarded
// is mirrored), or live packet capture on an interface (capture/live and
// the capture pipeline, Linux only). Exchanges arrive when their response
// is complete, so the mirror sends each request after the real one was
// answered.
//
// # HTTP/2 and gRPC
//
// An exchange recorded over HTTP/2 is mirrored over HTTP/2, as the replay
// engine replays it (replay/wire's H2Client): a stream of one connection
// per target, h2c with prior knowledge to an http:// shadow and h2 by ALPN
// to an https:// one; a gRPC call's messages go at their recorded offsets
// within the stream, with its trailers. The shadow's grpc-status is
// compared with the primary's like a status (replay/compare), and values
// the shadow issued in its protobuf answers (a token, an order id) are
// learned without a schema and carried in the session's later calls.
//
// # Recording meanwhile
//
// Config.Record, when set, receives a copy of every exchange read, as the
// source gave it and before the mirror's own session tracker annotates it.
// The CLI gives it a capture.Pipe read by capture.Record, the one loop
// that writes recordings, so a recording made while mirroring is redacted,
// given its sessions and closed exactly as one made by 'reprise proxy' or
// 'reprise capture'. A failed write stops the mirror's reading and is
// returned by Run.
//
// # Never slowing the real traffic
//
// The real traffic never waits for the mirror. The proxy hands exchanges
// over through its own bounded queue and drops (counts) when it is full.
// The mirror reads that queue in one goroutine which only sorts exchanges
// into per-session queues (Config.Queue each, Config.MaxSessions sessions,
// Config.MaxQueuedBytes of bodies in all);
// a full queue sheds the exchange and counts it (Stats.Shed). A slow or
// dead shadow therefore costs queue slots, never latency on the primary
// path, and nothing buffers without bound. A shadow that fails five
// requests in a row is left alone for 50 ms, doubling up to 2 s while it
// stays down (one request probes it each time), so a dead shadow does not
// cost the machine a failed connection per mirrored request; what is not
// sent meanwhile is shed as "down" and counts as failed for the guards.
//
// Requests go to the shadow with its own Host, without the hop-by-hop
// headers of the real connection, and redirects are not followed.
//
// # Sessions and tokens
//
// An identity tracker (session/identity) assigns each exchange its session
// and sees its logins, refreshes and logouts. Each session has one queue
// and one worker, so its requests reach the shadow one at a time in the
// order they completed in reality (for a client that waits for each
// answer, its causal order). The shadow issues its own tokens: each
// session has a correlation table (replay/correlate) that learns, from the
// real and the shadow's answers to the same request, which shadow value
// stands for which real one (access and refresh tokens, cookies, ids), and
// rewrites later requests with the shadow's values. So the session logs in
// on the shadow when it logged in for real, and refreshes when it
// refreshed, with the shadow's refresh token. A request that carries a
// value whose shadow counterpart failed to appear (the shadow's login
// failed) is not sent and is counted as uncorrelated. When a session loses
// a login or refresh to shedding, the rest of it is not mirrored (counted
// as broken), since its tokens could not be valid on the shadow.
//
// # Sampling
//
// Config.Sample mirrors a share of sessions, chosen by a hash of the
// session key, so a session is mirrored whole or not at all.
//
// # Writes
//
// Only safe methods (GET, HEAD, OPTIONS) are mirrored by default, because a
// shadow that shares a database with production must not write twice.
// Config.AllowWrites mirrors every method. Config.AllowAuth mirrors, in
// addition to safe methods, the exchanges the identity tracker saw log
// in, refresh or log out (usually POSTs): without them an authenticated
// session cannot be valid on a shadow with its own identity provider, and
// they write only to the session store. Neither flag: authenticated
// requests reach the shadow with the real tokens, which a shadow with its
// own tokens rejects (they show as status differences).
//
// # Caps and guards
//
// Config.Rate caps requests per second to the shadow over the whole run (one
// limiter), Config.MaxInflight caps concurrent requests; waiting for either
// fills the session queues, which then shed. Config.Abort rules (the
// replay's --abort-on grammar, over a sliding window of the shadow's
// answers) stop the mirror when the shadow is sick: nothing more is sent
// to it, the real traffic goes on, and Run returns a *guard.AbortError at
// the end.
//
// # Comparison
//
// Every mirrored exchange with a complete real answer is compared with the
// shadow's (replay/compare), with the correlation table as the
// equivalence, per route (replay.Route). Noise is learned by sending a
// share of safe requests twice to the shadow (Config.NoiseShare; the first
// NoiseFirst of each route always), or, with Config.Baseline, by mirroring
// to a second, known-good deployment too and comparing its answers with
// the real ones, as Diffy does.
package shadow
