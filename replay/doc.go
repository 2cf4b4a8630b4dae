// Package replay re-issues a recording's requests against a target, at the
// recorded pace or faster, with every session's order kept and its
// server-issued values (tokens, cookies, ids) kept live.
//
// # Timing
//
// Every request's due time comes from one absolute clock: start +
// Pacer.Due(offset), where offset is the request's start in the recording
// minus that of the first request replayed. With Speed(s) that is start +
// offset/s; a *ramp.Ramp of speeds is a Pacer too, and a rate cap
// (WithRate) is a limiter applied after it. The
// replay never sleeps the gap since the previous request, so lateness does
// not accumulate: a late request goes at once and its lateness is recorded
// as lag. Max ignores the recording's timing and sends as fast as the
// session order and the caps allow; its due time is the moment the
// scheduler reaches the request.
//
// The clock starts once the run is prepared: the look-ahead window's first
// fill read and the connections of the requests due in its first 50ms
// opened, so that the first request is as punctual as the thousandth.
// Waits are timers, never a spinning goroutine: spinning bought 0.15ms at
// the median and cost the target sharing the machine its CPU at the p99.
//
// # Sessions and their order
//
// Requests belong to sessions: Exchange.Session when the identity tracker
// set it, otherwise the connection they travelled on ("conn:<Conn.ID>").
// The order rule and the due times are package replay/schedule, pure
// arithmetic that the planner (replay/check) runs too, so its prediction
// is the schedule this engine runs. The order rule, for every session:
//
//	A request is not sent until every request of its session that had
//	completed before it started, in the recording, has completed in the
//	replay. Requests that overlapped in the recording may overlap in the
//	replay. Sessions are independent of each other.
//
// "Completed" is the response's last byte (Timing.ResponseEnd); "started"
// is the request's first byte (Timing.RequestStart). A recorded request
// that never got a response never completed, so nothing waits for it.
// One addition makes the rule robust to clocks: a request that carries a
// value (8 characters or more) that an earlier request's recorded response
// issued also waits for that request, whatever the timestamps say; a
// recording proxy may stamp the next request of a connection microseconds
// before the end of the response that came first. Time spent waiting for
// the order shows as order wait and as lag.
//
// # Scale
//
// WithScale(n) replays each session n times as independent clones. Clone k
// (0 <= k < n) of session S is keyed "S#k", learns its own live values
// (it logs in itself and is issued its own tokens), and is shifted by
// k*stagger on the recording's timeline (WithCloneStagger, default 50ms),
// so the clones' logins do not land on the same instant while the
// recording's rate curve keeps its shape; the run grows by at most
// (n-1)*stagger/speed.
//
// # Live values
//
// See package replay/correlate: values the recording's server issued are
// learned by aligning each recorded response with the live one and are
// substituted into the session's later requests. A request that carries a
// recorded value with no live counterpart (its login failed) is
// uncorrelated: skipped by default, sent as recorded with
// WithUncorrelated("send"); either way it is counted.
//
// # What is sent
//
// Method, request-target (path and query, after substitution) and body as
// recorded, over HTTP/1.1. Each recorded connection (Exchange.Conn.ID) is
// replayed as a connection of its own, and each clone's on its own again
// (WithConnections(ConnectionsRecorded), the default): opened when its
// first request is due, carrying its requests in the recorded order, one
// after the other's response, or pipelined when they were (a request that
// started before the previous response ended), and closed when its client
// asked to (Connection: close, HTTP/1.0 without keep-alive), when the
// server closed it in the recording or now, or when the run ends or the
// connection has been idle for the session idle limit (a recording holds
// no close time). A target sees users through their connections: a load
// balancer spreads connections, servers limit and time out per
// connection. With ConnectionsPooled, and for requests whose recording
// names no connection, keep-alive connections are pooled up to the
// in-flight cap, for top speed; a session whose requests follow one
// another without a wait keeps its connection from one to the next. The
// report's Connections counts the connections opened, reused and closed
// by each side, and the connect latency.
// Header fields are sent with their recorded names, in their recorded
// case and order, and values, repeated fields as they were (under
// WithFollowRedirects net/http's client sends them, in Go's canonical case
// and order). Hop-by-hop fields (session/http1's list: Connection,
// Keep-Alive, Transfer-Encoding, TE, Trailer, Upgrade, Proxy-*, Expect,
// and the fields a Connection field names) are dropped,
// Content-Length is recomputed from the body, and Host is the target's
// unless WithKeepHost. Redirects are not followed unless
// WithFollowRedirects: the recorded client's next request is in the
// recording already.
//
// # Memory
//
// The source is read as a stream with a look-ahead window
// (WithWindow, default 5s of recording time) that sorts exchanges by start
// time. Memory holds the window, the requests in flight or waiting for
// their order, and one small state per active session; a session idle for
// WithSessionIdle of recording time is released.
//
// # Stopping
//
// Every replay is bounded: by the recording, by WithMaxDuration (default
// 1h), and by Stop, which stops issuing requests at once and lets the ones
// in flight finish within their timeout (or the drain, WithDrainTimeout).
// Interrupt is the same orderly stop as an interruption: the report's
// Abort says so and Run returns an *InterruptedError; a guard's trip
// returns a *guard.AbortError. Cancelling the context passed to Run always
// aborts, the requests in flight too, as http.Server's Close does beside
// Shutdown. The package registers no signal and knows no exit code: the
// CLI calls Interrupt on SIGINT and maps the errors to exit codes.
//
// # Watching a run
//
// The engine shows nothing itself. Observers (WithObserver) get every
// Result, delivered with each worker's batch of figures; Monitors
// (WithMonitor) get the run's Status once a second, at once when it
// starts stopping, and at its end. The progress bar and the Prometheus
// metrics (replay/live.Display) subscribe; the HTML page is drawn from the
// Report (replay/htmlreport). The per-second series, like the histograms,
// is the engine's own figure of the report.
//
// # The code
//
// replay.go builds a Replayer and runs it; feed.go reads the source
// through the look-ahead window and makes clones; dispatch.go waits for
// due times and enters each request in its session's order; exec.go holds
// the workers that wait, send (through send.go) and learn; stop.go the
// orderly stops; liveview.go and observe.go the events for observers.
package replay
