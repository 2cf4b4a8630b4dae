// Package compare tells whether a shadow (candidate) service answers the
// same as the primary one, and which differences are real rather than
// noise.
//
// # What is compared
//
// Diff compares two responses to the same request:
//
//   - the status code;
//   - chosen headers (DefaultHeaders: Content-Type, Location,
//     Cache-Control; WithHeaders replaces the set), by value;
//   - the body, after undoing its Content-Encoding (session.DecodeBody:
//     gzip, deflate, br and lists of them; unknown encodings and damaged
//     streams are compared as sent), so that a candidate
//     that compresses differently but says the same is not reported. JSON
//     bodies (a JSON Content-Type, or bodies of both sides that parse as
//     JSON) are compared structurally, leaf by leaf: a path names each
//     difference ("$.items[3].price_cents", arrays by index), with a kind:
//     value (same type, other value), type (a string became a number),
//     missing (the shadow lacks a field the primary has) or extra (the
//     reverse). Numbers are equal when their values are. Other bodies are
//     compared by SHA-256 and length and reported as one "body" path. A
//     body that the recording truncated is not compared.
//   - protobuf without a schema: a gRPC answer's messages (split from
//     their length prefixes, grpc-encoding undone) and protobuf bodies
//     (application/x-protobuf, +proto) are read by session/pbwire, field
//     numbers and wire types only, and compared field by field. A path
//     is field numbers joined by dots, with an index on a field that
//     occurs more than once ("1.3[0].2"), and on the message when a
//     stream carried other than one ("[2].1"). The kinds are those of
//     JSON; a length-delimited value read as text on one side and bytes
//     on the other differs in value, not type.
//   - a gRPC call's grpc-status (kind status, path "grpc-status"), from
//     the trailer fields or a trailers-only answer.
//
// # Noise
//
// Some fields differ between any two answers of one service: timestamps,
// generated ids, tokens. Three mechanisms keep them out of the report:
//
//  1. Correlation. Diff takes an Equivalent function: the shadow package
//     passes one that says whether the shadow's value is the one the
//     session's correlation table maps the primary's value to (the token
//     the shadow issued in place of the primary's, the shadow's order id).
//     Equivalent values are equal.
//  2. Learned noise, as Diffy does. Observe counts primary-vs-shadow
//     differences per route and path; ObserveNoise counts differences
//     between two answers that should be the same: the same request sent
//     twice to the shadow, or the primary's answer compared with a second,
//     known-good baseline deployment. A path's noise rate is its share of
//     noise comparisons that differed there.
//  3. Heuristics (WithHeuristics, on by default), for what a second answer
//     cannot show (a created_at fixed when the record was made): a value
//     difference is volatile, and discounted, when both values are
//     timestamps (RFC 3339, HTTP dates, or Unix seconds/milliseconds in a
//     field whose name ends in at/time/date/ts/timestamp), both UUIDs, both
//     JWTs, or both random-looking identifiers of the same shape (the same
//     length of 8 or more, the same punctuation at the same places, no
//     spaces, at least two digits each: "ord_3f2a9c81" vs "ord_77b0e5d2").
//     Header values are split at / ? & = ; , and compared part by part the
//     same way, so a Location of /orders/ord_3f2a9c81 matches
//     /orders/ord_77b0e5d2.
//
// WithIgnore drops paths entirely: JSON paths with wildcards
// ("$.items[*].updated_at", "$.meta.*"; a pattern also covers everything
// below the node it names), protobuf paths ("1.3[*].2") and header names
// ("Date", or "header:Date"). Protobuf paths learn noise as JSON paths
// do; of the heuristics only those that need no field name apply (UUIDs,
// JWTs, random ids, textual timestamps).
//
// # When a difference is reported
//
// For each route and path the Report counts the non-volatile differences d
// among the route's n comparisons. The path is reported when d >= the
// minimum count (WithMinCount, default 3) and d/n exceeds the path's noise
// rate by more than the margin (WithMargin, default 0.10). A route's share
// of differing requests counts the requests with at least one reported
// path. Paths held back as noise are listed apart, so nothing is hidden.
//
// # Routes
//
// The package takes the route name from its caller; the shadow package
// names routes with the replay's route normalisation (replay.Route), so
// /orders/17 and /orders/18 count together. It does not import the replay
// engine itself, so that the engine can use it for replay --compare.
package compare
