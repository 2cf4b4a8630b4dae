// Package http2 assembles the frames of one HTTP/2 connection, seen
// passively in both directions, into exchanges: one per stream. It is the
// sibling of session/http1 and is built on golang.org/x/net/http2's Framer
// and its hpack decoder, so the capture parser reads frames and header
// blocks with the same code a Go client or server uses.
//
// An Assembler is fed the bytes each direction sent, with capture
// timestamps, gaps and the end; it knows nothing of packets. For each
// direction it keeps one HPACK decoder with its dynamic table and table-size
// updates. Each client-initiated stream becomes one session.Exchange:
// request header fields (pseudo-header fields first, as sent), DATA and
// trailer fields; response 1xx and final header fields, DATA and trailer
// fields; the four timestamps (first and last byte of each half);
// RST_STREAM and GOAWAY with their codes; PUSH_PROMISE counted (pushed
// streams are counted, not recorded). Flow control is ignored: a passive
// observer has nothing to grant.
//
// gRPC (a request content-type of application/grpc*): the DATA of each
// direction is split into length-prefixed messages, each recorded with its
// direction, compressed flag, size and the time its last byte arrived
// (session.GRPC); grpc-status and grpc-message come from the response
// trailer fields or a trailers-only response. Payloads reads the messages
// back from a recorded body, undoing grpc-encoding with session.DecodeBody,
// the decoder every reader of bodies shares.
//
// A capture that starts inside a connection does not know the dynamic
// tables built before it. The assembler then starts each HPACK decoder
// empty with an unbounded size: an entry added after the capture began
// keeps the index the peer's table gives it, and an index past the entries
// seen refers to one from before the capture and fails to decode. Such a
// header block is never guessed: its stream is counted as undecodable with
// the reason, and the decoder starts again from empty after it (the block
// may have added entries of its own). Every stream whose header blocks
// decode is recovered. The same rule covers bytes lost in reassembly,
// except bytes lost inside a DATA frame's payload, which cost only that
// payload. When the caller could only guess which side is the client
// (Config.GuessedRoles), the first block carrying :method or :status
// confirms or reverses the guess before anything is recorded, and a block
// without them is never recorded as a request or a response.
package http2
