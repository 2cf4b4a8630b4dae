package replay

import (
	"strings"
)

// Route names a request for per-route figures: the method and the path
// with identifier-like segments replaced by {id}, so that /orders/17 and
// /orders/18 count together. A segment is an identifier when it holds a
// digit and is either all digits, hex-and-dashes (uuids, hashes) or 16 or
// more characters long (opaque tokens). The query is dropped.
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
	if s == "" {
		return false
	}
	digits, hex := 0, true
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-':
		default:
			hex = false
		}
	}
	if digits == 0 {
		return false
	}
	return digits == len(s) || (hex && len(s) >= 8) || len(s) >= 16
}
