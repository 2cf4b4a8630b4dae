package session

import "strings"

// Route names a request for per-route figures: the method, a space, and
// RoutePath(target). Every figure keyed by route (the replay report, the
// recording summary, check's realism table) uses this one rule, so a route
// in one report is the same route in the others.
func Route(method, target string) string {
	return method + " " + RoutePath(target)
}

// RoutePath turns a request target into a route path: the path without
// its query or fragment, with identifier-like segments replaced by {id},
// so that /orders/17 and /orders/18 count together. A segment is an
// identifier when it is all digits; or 8 characters or more made of hex
// digits, '-' and '_' with at least one digit (UUIDs, hashes); or 8
// characters or more with at least two digits ("ord_3f2a9c81", opaque
// tokens). "v2", "products" and "cafe" stay. An absolute-form target (a
// proxy request) keeps its path only.
//
// A gRPC method's path, /package.Service/Method, is its route as it is:
// the route of a gRPC call is its method, and neither "v1beta2" in a
// package nor "Sha256Sum" in a method name is an identifier.
func RoutePath(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if i := strings.Index(target, "://"); i >= 0 {
		if j := strings.IndexByte(target[i+3:], '/'); j >= 0 {
			target = target[i+3+j:]
		} else {
			target = "/"
		}
	}
	if !strings.ContainsAny(target, "0123456789") || grpcMethod(target) {
		return target
	}
	segs := strings.Split(target, "/")
	for i, s := range segs {
		if idSegment(s) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

func idSegment(s string) bool {
	digits, other := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '-', c == '_':
		default:
			other++
		}
	}
	switch {
	case digits == 0:
		return false
	case digits == len(s):
		return true
	case len(s) < 8:
		return false
	}
	return other == 0 || digits >= 2
}

// grpcMethod reports whether path is /package.Service/Method: a dotted
// service name (gRPC's full name, which has a package) and a method name,
// each part an identifier. A service without a package has no shape to
// tell it from a REST path, and its digits are judged as any segment's.
func grpcMethod(path string) bool {
	if len(path) < 5 || path[0] != '/' {
		return false
	}
	svc, method, ok := strings.Cut(path[1:], "/")
	if !ok || !strings.Contains(svc, ".") || !ident(method) {
		return false
	}
	for part := range strings.SplitSeq(svc, ".") {
		if !ident(part) {
			return false
		}
	}
	return true
}

// ident reports whether s is a protobuf identifier: a letter or '_', then
// letters, digits and '_'.
func ident(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
