package http1

import "github.com/reprise-tool/reprise/session"

func sessionHeaders(kv ...string) session.Headers {
	var h session.Headers
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, session.Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}
