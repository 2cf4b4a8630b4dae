package replay

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// Error kinds, as counted in Report.Errors.
const (
	ErrKindConnect  = "connect"  // the connection could not be made (refused, unreachable, DNS)
	ErrKindTimeout  = "timeout"  // no answer in time (connect, headers or body)
	ErrKindReset    = "reset"    // the peer reset or closed the connection mid-exchange
	ErrKindCanceled = "canceled" // the replay was stopped while the request was in flight
	ErrKindOther    = "other"
)

// errKind classifies a transport error.
func errKind(err error) string {
	var ne net.Error
	var op *net.OpError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ErrKindTimeout
	case errors.Is(err, context.Canceled):
		return ErrKindCanceled
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.As(err, &op) && op.Op == "dial":
		return ErrKindConnect
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ErrKindReset
	}
	return ErrKindOther
}
