package compare

import (
	"bytes"
	"encoding/hex"
	"mime"
	"slices"
	"strconv"
	"strings"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
	"github.com/reprise-tool/reprise/session/pbwire"
)

// grpcMedia reports whether r is a gRPC answer (not gRPC-Web, whose
// trailers travel inside the body).
func grpcMedia(r *session.Response) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/grpc") && !strings.HasPrefix(ct, "application/grpc-web")
}

// protoMedia reports whether r's body is declared a protobuf message.
func protoMedia(r *session.Response) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-protobuf", "application/protobuf", "application/x-google-protobuf", "application/vnd.google.protobuf":
		return true
	}
	return strings.HasSuffix(mt, "+proto") || strings.HasSuffix(mt, "+protobuf")
}

// grpcStatus compares the calls' grpc-status (trailer fields, or the
// header fields of a trailers-only answer), when either is a gRPC answer:
// a status difference at path "grpc-status", the call's own outcome as
// the status code is the HTTP request's.
func grpcStatus(out []Difference, p, s *session.Response) []Difference {
	if !grpcMedia(p) && !grpcMedia(s) {
		return out
	}
	ps, ss := grpcCode(p), grpcCode(s)
	if ps != ss {
		out = append(out, Difference{Kind: KindStatus, Path: "grpc-status", Primary: ps, Shadow: ss})
	}
	return out
}

func grpcCode(r *session.Response) string {
	v := r.Trailer.Get("grpc-status")
	if v == "" {
		v = r.Header.Get("grpc-status")
	}
	if n, err := strconv.Atoi(v); err == nil {
		return v + " " + http2.GRPCCodeName(n)
	}
	return v
}

// diffGRPC compares the messages of two gRPC answers one by one. When
// either side has other than one message, paths start with the message's
// index: "[2].1.3".
func (c *Comparer) diffGRPC(out []Difference, p, s *session.Response, eq Equivalent) []Difference {
	pm, perr := http2.Payloads(&session.Exchange{Response: *p}, true)
	sm, serr := http2.Payloads(&session.Exchange{Response: *s}, true)
	if perr != nil || serr != nil {
		if !bytes.Equal(p.Body, s.Body) {
			out = append(out, Difference{Kind: KindBody, Path: "body", Primary: digest(p.Body), Shadow: digest(s.Body)})
		}
		return out
	}
	w := pbWalker{walker: walker{c: c, eq: eq, out: out}}
	indexed := len(pm) != 1 || len(sm) != 1
	for i := range max(len(pm), len(sm)) {
		path := []byte("$")
		if indexed {
			path = appendIndex(path, i)
		}
		switch {
		case i < len(pm) && i < len(sm):
			w.message(path, pm[i], sm[i])
		case i < len(pm):
			w.add(Difference{Kind: KindMissing, Path: pbPath(path), Primary: "message of " + strconv.Itoa(len(pm[i])) + " bytes"})
		default:
			w.add(Difference{Kind: KindExtra, Path: pbPath(path), Shadow: "message of " + strconv.Itoa(len(sm[i])) + " bytes"})
		}
		if len(w.out) >= maxDiffs {
			break
		}
	}
	return w.out
}

// pbWalker compares protobuf messages read without a schema (session/pbwire)
// field by field. Paths are field numbers joined by dots, with an index
// on a field that occurs more than once on either side ("1.3[0].2"); they
// are built under a "$" so that --ignore patterns, written without it,
// match them as they match JSON paths.
type pbWalker struct{ walker }

// pbPath is a built path as reported: without the "$" and its dot.
func pbPath(path []byte) string {
	s := strings.TrimPrefix(string(path), "$")
	if s == "" {
		return "body"
	}
	return strings.TrimPrefix(s, ".")
}

func appendIndex(path []byte, i int) []byte {
	return append(strconv.AppendInt(append(path, '['), int64(i), 10), ']')
}

// message compares two encoded messages at path; one that does not parse
// is compared as bytes.
func (w *pbWalker) message(path []byte, p, s []byte) {
	pf, perr := pbwire.Parse(p)
	sf, serr := pbwire.Parse(s)
	if perr != nil || serr != nil {
		if !bytes.Equal(p, s) {
			w.add(Difference{Kind: KindBody, Path: pbPath(path), Primary: digest(p), Shadow: digest(s)})
		}
		return
	}
	w.fields(path, pf, sf)
}

// fields compares two messages' fields, by number in ascending order.
func (w *pbWalker) fields(path []byte, pf, sf []pbwire.Field) {
	if w.ignored(path) {
		return
	}
	nums := make([]int32, 0, len(pf)+len(sf))
	for _, f := range pf {
		nums = append(nums, int32(f.Num))
	}
	for _, f := range sf {
		nums = append(nums, int32(f.Num))
	}
	slices.Sort(nums)
	for _, n := range slices.Compact(nums) {
		ps, ss := numbered(pf, n), numbered(sf, n)
		base := strconv.AppendInt(append(path, '.'), int64(n), 10)
		for i := range max(len(ps), len(ss)) {
			sub := base
			if len(ps) > 1 || len(ss) > 1 {
				sub = appendIndex(base, i)
			}
			switch {
			case i < len(ps) && i < len(ss):
				w.field(sub, &ps[i], &ss[i])
			case w.ignored(sub):
			case i < len(ps):
				w.add(Difference{Kind: KindMissing, Path: pbPath(sub), Primary: showField(&ps[i])})
			default:
				w.add(Difference{Kind: KindExtra, Path: pbPath(sub), Shadow: showField(&ss[i])})
			}
			if len(w.out) >= maxDiffs {
				return
			}
		}
	}
}

// numbered returns the fields numbered n, in their order.
func numbered(fs []pbwire.Field, n int32) []pbwire.Field {
	var out []pbwire.Field
	for _, f := range fs {
		if int32(f.Num) == n {
			out = append(out, f)
		}
	}
	return out
}

// field compares two values of one field. Length-delimited values read
// as different kinds (a string on one side, bytes or an empty message on
// the other) differ in value, not in type: the wire does not say which
// they are.
func (w *pbWalker) field(path []byte, p, s *pbwire.Field) {
	if w.ignored(path) {
		return
	}
	nested := func(f *pbwire.Field) bool {
		return (f.Kind == pbwire.Message && len(f.Bytes) > 0) || f.Kind == pbwire.Group
	}
	switch {
	case nested(p) && nested(s):
		w.fields(path, p.Fields, s.Fields)
		return
	case p.Kind != s.Kind && (nested(p) || nested(s) || !p.Kind.LengthDelimited() || !s.Kind.LengthDelimited()):
		w.add(Difference{Kind: KindType, Path: pbPath(path), Primary: p.Kind.String() + " " + showField(p), Shadow: s.Kind.String() + " " + showField(s)})
		return
	case p.Kind.LengthDelimited() && bytes.Equal(p.Bytes, s.Bytes), !p.Kind.LengthDelimited() && p.Scalar == s.Scalar:
		return
	}
	ps, ss := showField(p), showField(s)
	if w.eq != nil && w.eq(ps, ss) {
		return
	}
	d := Difference{Kind: KindValue, Path: pbPath(path), Primary: ps, Shadow: ss}
	if w.c.opts.heuristics {
		d.Volatile = volatile("", ps, ss)
	}
	w.add(d)
}

// showField gives a value as report text: varints in decimal (negative
// when they are a negative int64), text as it is, bytes in hex (the first
// 32), messages by size.
func showField(f *pbwire.Field) string {
	switch f.Kind {
	case pbwire.Varint, pbwire.Fixed64:
		if int64(f.Scalar) < 0 {
			return strconv.FormatInt(int64(f.Scalar), 10)
		}
		return strconv.FormatUint(f.Scalar, 10)
	case pbwire.Fixed32:
		return strconv.FormatUint(f.Scalar, 10)
	case pbwire.String:
		return string(f.Bytes)
	case pbwire.Bytes:
		if len(f.Bytes) > 32 {
			return "0x" + hex.EncodeToString(f.Bytes[:32]) + "… (" + strconv.Itoa(len(f.Bytes)) + " bytes)"
		}
		return "0x" + hex.EncodeToString(f.Bytes)
	}
	return "{" + strconv.Itoa(len(f.Fields)) + " fields}"
}
