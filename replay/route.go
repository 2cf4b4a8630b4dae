package replay

import (
	"strings"
)

// Route names a request for per-route figures: the method and the path
// with identifier-like segments replaced by {id}, so that /orders/17 and
// /orders/18 count together. A segment is an identifier when it is all
// digits, or 8 characters or more with at least two digits (uuids, hashes,
// "ord_3f2a9c81", opaque tokens). "v2" and "products" stay. The query is
// dropped.
func Route(method, target string) string {
	path, _, _ := strings.Cut(target, "?")
	if i := strings.Index(path, "://"); i >= 0 { // absolute-form target
		if j := strings.IndexByte(path[i+3:], '/'); j >= 0 {
			path = path[i+3+j:]
		} else {
			path = "/"
		}
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if idSegment(s) {
			segs[i] = "{id}"
		}
	}
	return method + " " + strings.Join(segs, "/")
}

func idSegment(s string) bool {
	digits := 0
	for _, c := range s {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	return digits > 0 && (digits == len(s) || (len(s) >= 8 && digits >= 2))
}
