// Package http1 is the one implementation of HTTP/1.x message framing in
// Reprise: start lines, header field lines, Content-Length and
// Transfer-Encoding, chunked bodies, which responses have no body, and
// which fields are hop-by-hop. The packet-capture parser
// (capture/httpstream), the recording proxy (capture/proxy) and the replay
// client (replay/wire) all ask it where a message ends, so they can never
// disagree about it. An HTTP/2 sibling (session/http2) can stand beside it.
//
// The rules are RFC 9112's, with one answer where the RFC leaves a choice:
//
//   - A bare LF ends a line as CRLF does (section 2.2); a CR before it is
//     dropped.
//   - Obsolete line folding (section 5.2) is replaced by one space and
//     flagged with FlagObsFold.
//   - Content-Length (RFC 9110 section 8.6): the same decimal value
//     repeated, in one field ("5, 5") or in several, is that value,
//     flagged with FlagDupLength; differing or malformed values are
//     ErrBadLength.
//   - Transfer-Encoding wins over Content-Length (section 6.3), flagged
//     with FlagLengthAndEncoding. A response whose final coding is not
//     chunked, or an HTTP/1.0 response with Transfer-Encoding, runs to the
//     close (FlagOtherCoding, FlagEncoding10); such a request is
//     ErrBadEncoding.
//   - 1xx, 204 and 304 responses and responses to HEAD have no body; a
//     response with neither field runs to the close.
//
// The functions work on byte slices or strings (the text type set) and do
// not allocate, so the replay client can parse the header bytes in place
// in its reader's buffer.
package http1
