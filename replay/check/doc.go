// Package check judges how real a replay is: before it runs, by
// predicting the load a plan will put on the target and how it distorts
// the recording's real usage; after it ran, by comparing its report with
// the recording. Each answer is a verdict (pass, warn or fail) with one
// line per reason, against thresholds the caller may change.
//
//	rec, _ := check.Load(ctx, []string{"traffic.rpz"}, check.LoadOptions{})
//	res, _ := check.CheckPlan(rec, check.Plan{Speed: 10}, check.DefaultThresholds())
//	res.WriteText(os.Stdout)
//
// # The prediction model
//
// CheckPlan plays the replay's schedule on a virtual clock, with the
// recording's own timing:
//
//   - Arrivals are compressed, service is not. A request recorded at offset
//     o is due at Pacer.Due(o) (o/speed, or the ramp's integral), clone k
//     of a session shifted by k times the clone stagger as replay does. Its
//     service time is the recorded one (first request byte to last response
//     byte) at any speed: the target is assumed to answer as fast as the
//     recorded server did. Faster replays therefore hold more requests in
//     flight, and a session whose think time compresses below its latency
//     waits for its order.
//   - Order is replay's rule, from package replay/schedule, which the
//     engine runs too: a request waits for every request of its session
//     that had completed before it started in the recording, and for an
//     earlier one whose response issued a value it carries, whatever the
//     recorded clocks say; for a value of 8 characters or more issued to
//     another session (a browser's token, carried on its other
//     connections) too, as replay shares such values between sessions.
//     Connections replayed as recorded (replay's default), it also waits
//     for the request before it on its HTTP/1 connection when that was
//     another session's and it was not pipelined behind it.
//   - Caps apply in that order, in due order: an in-flight slot
//     (--max-inflight, replay's default 64 when unset), then the rate cap
//     (one limiter, burst 1). --max-sessions delays a session's start
//     until a slot is free; the whole session slides by that wait.
//   - Token lifetimes are the server's and never compress. A token issued
//     by a login or refresh lives its recorded lifetime (expiry minus the
//     response's end) on the wall clock of the replay; a later request of
//     the session sent after that is counted as carrying an expired token.
//
// The model is approximate where caps and order waits interact (requests
// are granted slots in due order, not in the exact order the engine's
// goroutines would win them); it is exact for constant speeds without
// caps. From the simulated sends it reports the peak requests per second,
// the requests in flight and sessions active at once, the refreshes per
// second, identity's "refreshes at peak" (the share of refreshes begun in
// the busiest tenth of seconds, computed by identity.Summary on the
// simulated clock), the median interval from a token's issue to its
// refresh against the token's lifetime, and the schedule lag (send minus
// due) with how long it stays above a threshold. The recording's own
// figures come from the same simulation at 1x with no cap.
//
// # What the verdict means
//
// A faster replay refreshes when the recording refreshed, so a 60 s token
// is replaced after 5.5 s at 10x: the target sees ten times the refreshes
// per session that its own lifetimes call for (refresh_compression). A
// slower one, or one whose schedule slips behind a cap, refreshes after
// the live token has already expired (expired_tokens). A ramp can crowd
// the refreshes into the busiest seconds (refresh_peak). Every ramp packs
// its load into its fastest seconds, so the share of refreshes at peak
// rises with the share of requests; what is judged is how much more the
// refreshes crowd the busiest tenth of seconds than the requests do
// (refresh share at peak less request share at peak), against the same
// difference in the recording, beyond two standard errors of chance.
// Caps below the plan's peak make
// the schedule slip (rate_cap, inflight_cap, session_cap). Filters change
// the request mix before anything is sent (filters).
//
// # After a replay
//
// CheckRun compares a RunData (from replay.Report via ReadRun or
// FromReport) with the whole recording: the request mix by route (total
// variation distance over routes named by replay.Route), inter-arrival,
// think-time and session-length distributions (two-sample
// Kolmogorov-Smirnov statistic), schedule lag, order waits, transport
// errors, status changes, sessions that did not complete, and refreshes
// at peak (judged as for a plan, on the run's per-second counts).
//
// The distributions are compared where they mean the same on both sides.
// At a constant speed the run's wall times are set against the
// recording's divided by the speed. Under a ramp only the inter-arrivals
// are, through the report's speed-scaled copy (each gap times the speed
// in force); think times and session lengths are "not measured", since
// they mix the target's latency, which does not scale, with pauses that
// do, at speeds that change within a session. Two allowances keep a
// faithful run from failing on what it could not resolve: times shorter
// than the sender's timing jitter (its lag p90; times the top speed in
// recording time) count as equal, and a statistic is judged beyond its
// value by chance at the samples' sizes (KSNoise). Schedule lag and order
// waits get no allowance: they measure the replay itself, and a sender
// too starved to keep time did not replay the recording's timing.
//
// A figure whose data the report lacks, or which the run's speed makes
// meaningless, is listed in RunResult.NotMeasured with its reason in
// NotMeasuredWhy and printed as "not measured", never guessed.
package check
