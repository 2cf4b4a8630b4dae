package identity

import (
	"slices"
	"strings"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
	"github.com/reprise-tool/reprise/session/pbwire"
)

// This file reads the tokens of gRPC logins and refreshes from their
// protobuf messages, without a schema (session/pbwire): a gRPC login
// answers with a message, not a JSON object, and its later calls carry
// the token in authorization metadata, which the bearer rule reads as it
// does for HTTP/1.

// grpcUnauthenticated is the grpc-status of a call refused for its
// credentials (codes.Unauthenticated), gRPC's 401.
const grpcUnauthenticated = 16

// isGRPC reports whether x is a gRPC call: assembled with gRPC messages,
// or sent with a gRPC content-type.
func isGRPC(x *session.Exchange) bool {
	if x.Stream != nil && x.Stream.GRPC != nil {
		return true
	}
	return strings.HasPrefix(strings.ToLower(x.Request.Header.Get("Content-Type")), "application/grpc")
}

// grpcStatus returns x's grpc-status, and whether one came: the HTTP
// status of a refused call is 200 all the same.
func grpcStatus(x *session.Exchange) (int, bool) {
	if x.Stream == nil || x.Stream.GRPC == nil || !x.Stream.GRPC.HasStatus {
		return 0, false
	}
	return x.Stream.GRPC.Status, true
}

// grpcTokenFields reads the token-shaped values (see tokenShaped) of one
// direction of a gRPC call's messages, compressed ones decompressed, in
// the order they were sent, depth first. With no field names to go by,
// a response's first value is taken for the access token, a second for
// the refresh token and a third for an ID token, as token messages list
// them (OAuth2's token response, and most gRPC auth services after it);
// a request's first value is the token it presents (a refresh token to
// a refresh, the token a logout ends).
func grpcTokenFields(x *session.Exchange, fromServer bool) tokenFields {
	f := tokenFields{ExpiresIn: -1}
	msgs, _ := http2.Payloads(x, fromServer) // a cut message ends the list: read those before it
	var vals []string
	for _, m := range msgs {
		fields, err := pbwire.Parse(m)
		if err != nil {
			continue
		}
		vals = tokenValues(fields, vals)
		if len(vals) >= 3 {
			break
		}
	}
	if fromServer {
		for i, p := range []*string{&f.AccessToken, &f.RefreshToken, &f.IDToken} {
			if i < len(vals) {
				*p = vals[i]
			}
		}
	} else if len(vals) > 0 {
		f.Token, f.RefreshToken = vals[0], vals[0]
	}
	return f
}

// tokenValues appends to out the distinct token-shaped string values of
// fields, nested messages included, up to three.
func tokenValues(fields []pbwire.Field, out []string) []string {
	for i := range fields {
		if len(out) >= 3 {
			break
		}
		switch f := &fields[i]; f.Kind {
		case pbwire.String:
			if tokenShaped(f.Bytes) {
				if v := string(f.Bytes); !slices.Contains(out, v) {
					out = append(out, v)
				}
			}
		case pbwire.Message:
			out = tokenValues(f.Fields, out)
		}
	}
	return out
}

// tokenShaped reports whether a string field's value looks like a token:
// 16 to 4096 printable ASCII characters with no space, quote, '&', ';'
// or ',' (base64 padding '=' allowed), as opaque tokens, JWTs and ids
// are; names, prose and short passwords are not.
func tokenShaped(b []byte) bool {
	if len(b) < 16 || len(b) > 4096 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '&' || c == ';' || c == ',' {
			return false
		}
	}
	return true
}
