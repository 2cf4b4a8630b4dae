package replay

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
)

// Protocols a replay speaks (see WithProtocol).
const (
	// ProtocolAuto replays each exchange in its recorded protocol: an
	// HTTP/2 connection as one HTTP/2 connection carrying its streams.
	ProtocolAuto = "auto"
	// ProtocolH1 replays everything as HTTP/1.1: HTTP/2 exchanges are
	// translated, and gRPC ones, which need HTTP/2, are skipped.
	ProtocolH1 = "h1"
	// ProtocolH2 replays everything as HTTP/2 over TLS (ALPN h2): the
	// target must be https.
	ProtocolH2 = "h2"
	// ProtocolH2C replays everything as HTTP/2 over cleartext TCP with
	// prior knowledge: the target must be http.
	ProtocolH2C = "h2c"
)

// WithProtocol sets the protocol requests go in (default ProtocolAuto, as
// recorded). An HTTP/2 replay goes to an https target by ALPN h2 and to an
// http one as h2c with prior knowledge.
func WithProtocol(p string) Option {
	return func(o *options) error {
		switch p {
		case ProtocolAuto, ProtocolH1, ProtocolH2, ProtocolH2C:
			o.protocol = p
			return nil
		}
		return fmt.Errorf("protocol %q: want %s, %s, %s or %s", p, ProtocolAuto, ProtocolH1, ProtocolH2, ProtocolH2C)
	}
}

// checkProtocol says whether the forced protocol fits the target's scheme.
func checkProtocol(protocol, scheme string) string {
	switch {
	case protocol == ProtocolH2 && scheme != "https":
		return "--protocol h2 is HTTP/2 over TLS and needs an https:// target; use --protocol h2c for http://"
	case protocol == ProtocolH2C && scheme != "http":
		return "--protocol h2c is cleartext HTTP/2 and needs an http:// target; use --protocol h2 for https://"
	}
	return ""
}

// useH2 reports whether ex goes on an HTTP/2 stream: the run forces
// HTTP/2, or replays as recorded and ex was recorded on one. Following
// redirects takes net/http's HTTP/1 client.
func (r *Replayer) useH2(ex *session.Exchange) bool {
	if r.wire == nil {
		return false
	}
	switch r.o.protocol {
	case ProtocolH1:
		return false
	case ProtocolH2, ProtocolH2C:
		return true
	}
	return ex.Conn.Protocol.IsHTTP2()
}

// sendH2 sends t's request as a stream: on its line's connection when it
// has one (the recorded connection's streams share it), else on the
// client's shared HTTP/2 connection.
func (r *Replayer) sendH2(ctx context.Context, t *task, wr *wireRequest, w *worker) (*session.Response, int64, error) {
	req := r.h2Request(&w.h2, wr, t.it.ex)
	if ln := t.line; ln != nil && ln.h2 != nil {
		ln.written(t)
		return ln.h2.Do(ctx, req)
	}
	return r.wire.h2.Do(ctx, req)
}

// h2Request makes req, the stream to send, from the built request: its
// recorded trailers, and for gRPC its client messages, each due at its
// recorded offset within the stream scaled by the run's speed.
//
// Live values are substituted in the header fields (metadata such as
// authorization, cookies) as for HTTP/1, and inside the body's protobuf
// messages (see learnGRPC for those learned from them), each message
// re-encoded with the new lengths when a live value's length differs from
// the recorded one; the parts' ends are read from the rewritten body.
func (r *Replayer) h2Request(req *wire.H2Request, wr *wireRequest, ex *session.Exchange) *wire.H2Request {
	*req = wire.H2Request{Request: wr, Trailer: ex.Request.Trailer}
	if ex.Stream == nil || ex.Stream.GRPC == nil {
		req.GRPC = strings.HasPrefix(ex.Request.Header.Get("content-type"), "application/grpc")
		return req
	}
	req.GRPC = true
	speed := r.o.pacer.Speed(time.Since(time.Unix(0, r.start.Load())))
	req.Parts = wire.GRPCParts(ex.Stream.GRPC, wr.Body, speed)
	return req
}

// h2Failed reports whether err should mark the session failed: a gRPC
// status the recording had too is the recorded behaviour, not a failure.
func h2Failed(err error, ex *session.Exchange) bool {
	ge, ok := err.(*wire.GRPCError)
	if !ok || ex.Stream == nil || ex.Stream.GRPC == nil {
		return true
	}
	g := ex.Stream.GRPC
	return !g.HasStatus || g.Status != ge.Code
}

// learnsGRPC reports whether ex's live response is read for learnGRPC: a
// gRPC call sent over HTTP/2 whose recorded response has messages.
func (r *Replayer) learnsGRPC(ex *session.Exchange) bool {
	return ex.Stream != nil && ex.Stream.GRPC != nil && len(ex.Response.Body) > 0 && r.useH2(ex)
}

// learnGRPC learns the live counterparts of the values in the recorded
// gRPC response's messages (see correlate.Table.LearnGRPC). It returns
// the values learned.
func (r *Replayer) learnGRPC(t *task, live *session.Response) int {
	return t.ss.table.LearnGRPC(t.it.ex, live)
}
