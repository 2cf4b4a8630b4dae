package http2

import (
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// AsHTTP1 gives the HTTP/1.1 form of a recorded HTTP/2 request, so that an
// HTTP/1 sender never writes pseudo-header fields as header lines (RFC 9113
// section 8.3.1 maps them; section 8.2.3 splits cookies). A request that is
// not HTTP/2 is returned as it is, without a copy; otherwise the result is
// a new request sharing the body and trailer fields:
//
//   - Method and Target come from :method and :path (a CONNECT, which has
//     no :path, targets :authority); the other pseudo-header fields go.
//   - Host comes from :authority unless the request carries its own host
//     field; it is the first field, as HTTP/1 clients write it.
//   - The cookie fields, which HTTP/2 may send one pair each, are joined
//     into one with "; " where the first stood.
//   - Connection-specific fields, malformed in HTTP/2, are dropped; te is
//     kept only as "te: trailers", the one value both versions allow, and
//     then named in a Connection field as HTTP/1 wants of a hop-by-hop
//     field.
//
// Trailer fields stay in Trailer: HTTP/1 carries them only after a chunked
// body, which is the sender's choice.
func AsHTTP1(req *session.Request) *session.Request {
	if req.Proto != "HTTP/2.0" {
		return req
	}
	out := *req
	out.Proto = "HTTP/1.1"
	h := make(session.Headers, 0, len(req.Header)+1)
	var authority string
	cookie, te := -1, false // cookie: the index of the joined field
	hasHost := req.Header.Get("host") != ""
	for _, f := range req.Header {
		name := strings.ToLower(f.Name)
		switch {
		case name == ":method":
			if out.Method == "" {
				out.Method = f.Value
			}
		case name == ":path":
			if out.Target == "" {
				out.Target = f.Value
			}
		case name == ":authority":
			authority = f.Value
		case strings.HasPrefix(name, ":"):
			// :scheme and :protocol have no HTTP/1 field.
		case name == "cookie":
			if cookie < 0 {
				cookie = len(h)
				h = append(h, f)
			} else {
				h[cookie].Value += "; " + f.Value
			}
		case name == "te":
			te = te || strings.EqualFold(strings.TrimSpace(f.Value), "trailers")
		case name == "connection", name == "keep-alive", name == "proxy-connection",
			name == "transfer-encoding", name == "upgrade":
		default:
			h = append(h, f)
		}
	}
	if out.Target == "" && strings.EqualFold(out.Method, "CONNECT") {
		out.Target = authority
	}
	if !hasHost && authority != "" {
		h = append(h, session.Header{})
		copy(h[1:], h)
		h[0] = session.Header{Name: "host", Value: authority}
	}
	if te {
		h = append(h, session.Header{Name: "te", Value: "trailers"}, session.Header{Name: "connection", Value: "te"})
	}
	out.Header = h
	return &out
}

// NeedsHTTP2 reports whether a request cannot be carried by HTTP/1: a gRPC
// call (a content-type of application/grpc, +proto or +json), whose
// status travels in trailer fields that HTTP/1 senders and servers drop.
// gRPC-Web (application/grpc-web*) was made for HTTP/1 and does not need it.
// The replay engine asks it of every exchange it reads, so it allocates
// nothing.
func NeedsHTTP2(req *session.Request) bool {
	ct := req.Header.Get("content-type")
	return prefixFold(ct, "application/grpc") && !prefixFold(ct, "application/grpc-web")
}

func prefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
