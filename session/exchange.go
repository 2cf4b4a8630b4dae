// Package session holds Reprise's data model and its recording file.
//
// Everything upstream (packet capture, the recording proxy) produces
// Exchanges; everything downstream (replay, check, shadow) consumes them.
// An Exchange is one HTTP request and its response as they crossed the wire,
// with the connection they travelled on, four timestamps, and the identity
// (session key and token events) that the identity tracker attaches.
//
// The package imports nothing else from Reprise, so that recordings can be
// read and written by other programs as a plain Go library.
package session

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Header is one header field as it appeared on the wire: the name keeps its
// original case, and repeated fields stay separate and in order, because
// replay must send what the client sent, not a canonicalised copy.
type Header struct {
	Name  string
	Value string
}

// Headers is an ordered list of header fields.
type Headers []Header

// Get returns the value of the first field named name (compared without
// regard to case), or "".
func (h Headers) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values returns the values of every field named name, in order.
func (h Headers) Values(name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// Conn identifies the TCP connection an exchange travelled on.
type Conn struct {
	// ID is unique within one recording (or one capture run): exchanges
	// with the same ID shared a connection, in the order of Exchange.Index.
	ID     uint64
	Client netip.AddrPort
	Server netip.AddrPort
	// Protocol is the wire protocol the connection spoke; the zero value is
	// HTTP/1, so recordings made before HTTP/2 read as HTTP/1.
	Protocol Protocol `json:",omitempty"`
}

// ConnInfo is what a recording knows of one connection as a whole: when it
// opened and closed, who closed it, and how many exchanges it carried
// (format 1.2, record kind 5). It is written when the connection ends, or
// when the capture does, so it follows the connection's exchanges in the
// file; a recording made before 1.2 has none, and a replay then goes by
// the Conn.ID of its exchanges alone.
type ConnInfo struct {
	ID     uint64 // Conn.ID of its exchanges
	Client netip.AddrPort
	Server netip.AddrPort
	// Opened is the connection's SYN, or its first byte when the capture
	// began after the SYN (Unix ns).
	Opened int64
	// Closed is when the first FIN or RST was sent; when ClosedBy is
	// PartyNone it is the last moment the connection was seen (it went
	// idle, or was still open when the capture ended). 0: unknown.
	Closed int64
	// ClosedBy is who sent the first FIN or RST: PartyClient,
	// PartyServer, or PartyNone when neither did while it was watched.
	ClosedBy Party
	// Reset is set when that close was an RST.
	Reset bool
	// Exchanges counts the exchanges the connection carried.
	Exchanges int
}

// String names the party: "client", "server" or "none".
func (p Party) String() string {
	switch p {
	case PartyClient:
		return "client"
	case PartyServer:
		return "server"
	}
	return "none"
}

// Protocol names the wire protocol of a connection.
type Protocol uint8

// The protocols. A connection upgraded from HTTP/1.1 to h2c is recorded as
// ProtoH2C; its first stream is the upgraded request.
const (
	ProtoHTTP1 Protocol = 0 // HTTP/1.0 or HTTP/1.1
	ProtoH2C   Protocol = 1 // HTTP/2 over cleartext TCP (prior knowledge or Upgrade: h2c)
	ProtoH2    Protocol = 2 // HTTP/2 over TLS, negotiated by ALPN
)

// String returns "h1", "h2c" or "h2", the names inspect prints.
func (p Protocol) String() string {
	switch p {
	case ProtoHTTP1:
		return "h1"
	case ProtoH2C:
		return "h2c"
	case ProtoH2:
		return "h2"
	}
	return "proto" + strconv.Itoa(int(p))
}

// IsHTTP2 reports whether p is h2c or h2.
func (p Protocol) IsHTTP2() bool { return p == ProtoH2C || p == ProtoH2 }

// Request is the request half of an exchange.
type Request struct {
	Method string
	Target string // the request-target exactly as sent, e.g. "/api/items?page=2"
	Proto  string // "HTTP/1.1"
	Header Headers
	// Body holds the body bytes as sent, after removing chunked framing but
	// with any content-encoding untouched, up to the recording's body cap.
	Body []byte
	// BodySize is the full body length on the wire (after de-chunking),
	// which exceeds len(Body) when FlagRequestTruncated is set.
	BodySize int64
	// Trailer holds the trailer fields sent after the body (an HTTP/2
	// trailing HEADERS frame), in order; nil when there were none.
	Trailer Headers `json:",omitempty"`
}

// Response is the response half of an exchange. It is the zero value when
// FlagNoResponse is set.
type Response struct {
	Proto    string
	Status   int
	Reason   string
	Header   Headers
	Body     []byte
	BodySize int64
	// Trailer holds the trailer fields sent after the body; a gRPC
	// response's grpc-status is here (or in Header for a trailers-only
	// response).
	Trailer Headers `json:",omitempty"`
}

// Timing holds the four moments of an exchange in Unix nanoseconds, taken
// from packet timestamps (capture) or the proxy's clock. Zero means unknown.
type Timing struct {
	RequestStart  int64 // first byte of the request
	RequestEnd    int64 // last byte of the request
	ResponseStart int64 // first byte of the response
	ResponseEnd   int64 // last byte of the response
}

// Latency is the time from the request's last byte to the response's last
// byte, or 0 when either is unknown.
func (t Timing) Latency() time.Duration {
	if t.RequestEnd == 0 || t.ResponseEnd == 0 {
		return 0
	}
	return time.Duration(t.ResponseEnd - t.RequestEnd)
}

// Flags say what is known to be missing or odd about an exchange. They are
// never hidden: inspect and replay reports count them.
type Flags uint32

const (
	// FlagRequestTruncated: the request body was longer than the body cap;
	// Request.Body holds its first bytes and Request.BodySize the full size.
	FlagRequestTruncated Flags = 1 << iota
	// FlagResponseTruncated: likewise for the response body.
	FlagResponseTruncated
	// FlagNoResponse: the request was seen but no response was (the
	// connection closed, the capture ended, or packets were lost).
	FlagNoResponse
	// FlagRequestGap: bytes of the request were lost in reassembly.
	FlagRequestGap
	// FlagResponseGap: bytes of the response were lost in reassembly.
	FlagResponseGap
	// FlagRedacted: some values were replaced by keyed hashes at capture.
	FlagRedacted
)

// Incomplete reports whether any part of the exchange is missing.
func (f Flags) Incomplete() bool {
	return f&(FlagNoResponse|FlagRequestGap|FlagResponseGap) != 0
}

// Exchange is one request and its response.
type Exchange struct {
	Conn Conn
	// Index is the exchange's position on its connection, from 0.
	Index    int
	Request  Request
	Response Response
	Timing   Timing
	Flags    Flags
	// Warnings are parse warnings in plain words ("response without
	// Content-Length on keep-alive connection"), for inspect to count.
	Warnings []string

	// Session is the key of the session the exchange belongs to, filled by
	// the identity tracker; "" when unknown.
	Session string
	// Tokens are the token events this exchange caused or carried (a login
	// that issued tokens, a refresh, a logout, a rejected token).
	Tokens []TokenEvent

	// Stream holds what HTTP/2 adds: the stream id, interim responses,
	// resets and gRPC messages. It is nil for HTTP/1 exchanges, which
	// then cost nothing more to store.
	Stream *Stream `json:",omitempty"`
}

// Stream is the HTTP/2 side of an exchange: one stream of a connection.
type Stream struct {
	// ID is the stream identifier; Exchange.Index still orders the
	// exchanges of a connection by the time their streams opened.
	ID uint32
	// Interim are the 1xx responses sent before the final one.
	Interim []Interim
	// Reset is the RST_STREAM that ended the stream, if one did.
	Reset Abort
	// GoAway is the GOAWAY received while the stream was open, if any.
	GoAway Abort
	// Pushes counts the PUSH_PROMISE frames the server sent on the stream;
	// pushed streams are counted, not recorded.
	Pushes int
	// GRPC is set for a request with content-type application/grpc*.
	GRPC *GRPC
}

// Interim is one 1xx response of a stream.
type Interim struct {
	Status int
	Header Headers
}

// Abort is an RST_STREAM or a GOAWAY: who sent it and its error code.
type Abort struct {
	By   Party  // PartyNone when there was none
	Code uint32 // the HTTP/2 error code (0 NO_ERROR, 8 CANCEL, ...)
}

// Party names an end of a connection.
type Party uint8

// The parties.
const (
	PartyNone   Party = 0
	PartyClient Party = 1
	PartyServer Party = 2
)

// GRPC holds the gRPC view of a stream: its messages and its status.
type GRPC struct {
	// Messages are the length-prefixed messages of both directions, in
	// the order their last bytes arrived. Their payloads are the bodies:
	// Request.Body holds the client's messages, each with its 5-byte
	// prefix, and Response.Body the server's (as far as the body cap kept).
	Messages []Message
	// Status is the grpc-status code (0 OK) when HasStatus is set;
	// StatusMessage is grpc-message, percent-decoded as sent.
	Status        int
	HasStatus     bool
	StatusMessage string
}

// Message is one gRPC message.
type Message struct {
	FromServer bool
	// Compressed is the message's compressed flag: the payload is encoded
	// with the stream's grpc-encoding.
	Compressed bool
	// Size is the payload length, without the 5-byte prefix.
	Size uint32
	// At is when the message's last byte arrived, in nanoseconds after
	// Timing.RequestStart.
	At int64
}

// GRPCMethod returns the gRPC method of a request, "/pkg.Service/Method" (the
// path without a query), or "" when the exchange is not gRPC.
func (x *Exchange) GRPCMethod() string {
	if x.Stream == nil || x.Stream.GRPC == nil {
		return ""
	}
	t := x.Request.Target
	if i := strings.IndexByte(t, '?'); i >= 0 {
		t = t[:i]
	}
	return t
}

// MaxWarnings bounds the warnings Warn keeps on one exchange.
const MaxWarnings = 8

// Warn adds warning w to x unless x already has it or holds MaxWarnings:
// parsers warn per event, and a damaged stream must not grow without
// bound.
func (x *Exchange) Warn(w string) {
	if len(x.Warnings) >= MaxWarnings {
		return
	}
	for _, have := range x.Warnings {
		if have == w {
			return
		}
	}
	x.Warnings = append(x.Warnings, w)
}

// TokenEventKind says what happened to a token.
type TokenEventKind string

// The token event kinds.
const (
	TokenLogin    TokenEventKind = "login"    // credentials exchanged for tokens
	TokenRefresh  TokenEventKind = "refresh"  // a refresh token exchanged for new tokens
	TokenIssue    TokenEventKind = "issue"    // a token set without login or refresh (e.g. a Set-Cookie)
	TokenLogout   TokenEventKind = "logout"   // the session ended its tokens
	TokenRejected TokenEventKind = "rejected" // the server refused a token (a 401)
)

// TokenEvent records one change in a session's tokens. It is stored with the
// exchange that caused it, so the recording keeps when every token was
// issued, refreshed and rejected.
type TokenEvent struct {
	Kind TokenEventKind `json:"kind"`
	// Name says which token: "access_token", "refresh_token",
	// "cookie:SESSIONID", "header:X-Auth-Token".
	Name string `json:"name,omitempty"`
	// Value is the token's value (or its keyed hash in a redacted
	// recording); Prev is the value it replaced, when known.
	Value string `json:"value,omitempty"`
	Prev  string `json:"prev,omitempty"`
	// ExpiresAt is the token's expiry in Unix nanoseconds, from a JWT exp
	// claim, expires_in or a cookie's Max-Age/Expires; 0 when unknown.
	ExpiresAt int64 `json:"expires_at,omitempty"`
	// Proactive is true for a refresh the client made on its own, with no
	// 401 in the session since the old token was issued; false for one
	// made in reaction to a 401. A proactive refresh that came after the
	// old token's expiry anyway shows a negative Lead.
	Proactive bool `json:"proactive,omitempty"`
	// Lead is how long before the old token's expiry a refresh happened,
	// in nanoseconds (negative: after expiry); 0 when unknown.
	Lead int64 `json:"lead,omitempty"`
}

// Source yields exchanges in order, one per call, and io.EOF after the last.
// Live capture, pcap import, the recording proxy and a recording file all
// have this shape, so every consumer takes any of them.
type Source interface {
	Next() (*Exchange, error)
}

// Sink accepts exchanges; a recording Writer is one.
type Sink interface {
	WriteExchange(*Exchange) error
}
