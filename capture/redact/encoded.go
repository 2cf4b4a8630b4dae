package redact

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// maxEncoded is the largest compressed body decoded to look for secrets:
// tokens travel in small bodies, and a capture must not spend its time
// inflating large API listings. A larger one gets a warning, as before.
const maxEncoded = 1 << 20

// maxDecoded bounds what one compressed body may inflate to
// (session.DecodeBody's limit), so a compression bomb costs that at most.
const maxDecoded = 8 << 20

// redactEncoded redacts a compressed body: it decodes it with
// session.DecodeBody, redacts the result and, when something changed,
// encodes it again with the same coding when that is gzip or deflate, so
// Content-Encoding stays true and a replay sends what the client sent in
// form. Other codings (br, zstd, chains) are stored decoded, with the
// Content-Encoding header set to "identity" and a warning on the exchange:
// the recording then says what it holds. A body cut at the body cap, or one
// larger than maxEncoded, is left as it was with a warning.
func (r *Redactor) redactEncoded(h session.Headers, enc string, body []byte, truncated, isForm, isJSON, request bool, hit func(string)) ([]byte, bool, string) {
	if truncated || len(body) > maxEncoded {
		return nil, false, "body is " + enc + "-encoded and too large or cut: not redacted"
	}
	plain, err := session.DecodeBody(enc, body, maxDecoded)
	if err != nil {
		return nil, false, "body is " + enc + "-encoded and did not decode (" + err.Error() + "): not redacted"
	}
	out, ok, _ := r.redactPlain(plain, isForm, isJSON, request, hit)
	if !ok {
		return nil, false, ""
	}
	switch enc {
	case "gzip", "x-gzip":
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(out)
		zw.Close()
		return b.Bytes(), true, ""
	case "deflate":
		// The zlib wrapping RFC 9110 asks for.
		var b bytes.Buffer
		zw := zlib.NewWriter(&b)
		zw.Write(out)
		zw.Close()
		return b.Bytes(), true, ""
	}
	for i := range h {
		if strings.EqualFold(h[i].Name, "Content-Encoding") {
			h[i].Value = "identity"
		}
	}
	return out, true, "body was " + enc + "-encoded: stored decoded after redaction (Content-Encoding: identity)"
}
