package identity

import (
	"testing"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/pbwire/pbtest"
)

func grpcBody(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(append(b, 0, byte(len(m)>>24), byte(len(m)>>16), byte(len(m)>>8), byte(len(m))), m...)
	}
	return b
}

func TestGRPCTokenFields(t *testing.T) {
	const at, rt = "at_0123456789abcdef", "rt_fedcba9876543210"
	tests := []struct {
		name       string
		body       []byte
		fromServer bool
		want       tokenFields
	}{
		// A token message: the first token-shaped value is the access
		// token, the second the refresh token; the TTL varint is no token.
		{"token message", grpcBody(pbtest.Message(1, at, 2, uint64(2000), 3, rt)), true,
			tokenFields{AccessToken: at, RefreshToken: rt, ExpiresIn: -1}},
		// Nested one level down, as in a LoginReply{session{...}}.
		{"nested", grpcBody(pbtest.Message(1, "ok", 4, pbtest.Message(1, at, 2, rt))), true,
			tokenFields{AccessToken: at, RefreshToken: rt, ExpiresIn: -1}},
		// Short strings, prose and binary are no tokens.
		{"no tokens", grpcBody(pbtest.Message(1, "ann", 2, "a long sentence, not a token", 3, []byte{0xff, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})), true,
			tokenFields{ExpiresIn: -1}},
		// A request presents its first token-shaped value.
		{"refresh request", grpcBody(pbtest.Message(1, rt)), false,
			tokenFields{Token: rt, RefreshToken: rt, ExpiresIn: -1}},
		// A message cut short by the recording's body limit holds nothing.
		{"cut", grpcBody(pbtest.Message(1, at))[:10], true, tokenFields{ExpiresIn: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := &session.Exchange{Stream: &session.Stream{GRPC: &session.GRPC{}}}
			if tc.fromServer {
				x.Response.Body = tc.body
			} else {
				x.Request.Body = tc.body
			}
			if got := grpcTokenFields(x, tc.fromServer); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
