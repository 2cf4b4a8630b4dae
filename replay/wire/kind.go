package wire

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// Error kinds, as a replay's report counts them and a guard weighs them.
// Kind finds one for any error Do returns, by errors.Is and errors.As on
// what the error wraps, never by its text.
const (
	KindConnect  = "connect"  // the connection could not be made (refused, unreachable, DNS)
	KindTimeout  = "timeout"  // no answer in time (connect, headers or body)
	KindReset    = "reset"    // the peer reset or closed the connection mid-exchange
	KindCanceled = "canceled" // the run was stopped while the request was in flight
	KindOther    = "other"    // anything else: an answer that is not HTTP/1, a closed client
)

// ErrClosed is returned once the client was closed (the run ended); its
// kind is KindCanceled.
var ErrClosed = errors.New("replay stopped: connection closed")

// Kind classifies an error from Do: "" for nil, else one of the Kind
// constants.
func Kind(err error) string {
	var ne net.Error
	var op *net.OpError
	var own interface{ Kind() string } // HTTP/2's and gRPC's own kinds (see h2.go)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &own):
		return own.Kind()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, ErrClosed):
		return KindCanceled
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.As(err, &op) && op.Op == "dial":
		return KindConnect
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return KindReset
	}
	return KindOther
}
