// Package har reads and writes HAR 1.2 (HTTP Archive) files, the format
// browsers' devtools, Playwright (recordHar, routeFromHAR), mitmproxy and
// k6's har-to-k6 speak, so their captures become Reprise exchanges and a
// recording opens in devtools or serves a Playwright test.
//
// The specification is W3C's "HTTP Archive (HAR) format" draft (HAR 1.2).
// Fields whose name starts with an underscore are custom fields, which the
// specification allows and other tools ignore; Writer uses a few to keep
// what HAR cannot hold (the bytes of a compressed body as sent, a binary
// request body), so a round trip through HAR is exact.
package har

// The JSON shapes of HAR 1.2, limited to what Reprise reads or writes.

type nameVer struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type page struct {
	StartedDateTime string      `json:"startedDateTime"`
	ID              string      `json:"id"`
	Title           string      `json:"title"`
	PageTimings     pageTimings `json:"pageTimings"`
}

type pageTimings struct {
	OnContentLoad float64 `json:"onContentLoad"`
	OnLoad        float64 `json:"onLoad"`
}

type entry struct {
	Pageref         string   `json:"pageref,omitempty"`
	StartedDateTime string   `json:"startedDateTime"`
	Time            float64  `json:"time"`
	Request         request  `json:"request"`
	Response        response `json:"response"`
	Cache           struct{} `json:"cache"`
	Timings         timings  `json:"timings"`
	ServerIPAddress string   `json:"serverIPAddress,omitempty"`
	Connection      string   `json:"connection,omitempty"`
	// Reprise's custom fields.
	Target string `json:"_target,omitempty"` // a request-target the URL cannot give back (absolute or asterisk form)
	// ServerPort is the server's port when it differs from the URL's (the
	// Host field named another port, as behind a proxy).
	ServerPort uint16 `json:"_serverPort,omitempty"`
}

type request struct {
	Method      string    `json:"method"`
	URL         string    `json:"url"`
	HTTPVersion string    `json:"httpVersion"`
	Cookies     []cookie  `json:"cookies"`
	Headers     []nv      `json:"headers"`
	QueryString []nv      `json:"queryString"`
	PostData    *postData `json:"postData,omitempty"`
	HeadersSize int64     `json:"headersSize"`
	BodySize    int64     `json:"bodySize"`
	// FullBodySize is Reprise's: the body's size when the recording kept
	// only its first bytes (its body cap).
	FullBodySize int64 `json:"_fullBodySize,omitempty"`
}

type response struct {
	Status      int      `json:"status"`
	StatusText  string   `json:"statusText"`
	HTTPVersion string   `json:"httpVersion"`
	Cookies     []cookie `json:"cookies"`
	Headers     []nv     `json:"headers"`
	Content     content  `json:"content"`
	RedirectURL string   `json:"redirectURL"`
	HeadersSize int64    `json:"headersSize"`
	BodySize    int64    `json:"bodySize"`
	// FullBodySize is Reprise's, as in request.
	FullBodySize int64 `json:"_fullBodySize,omitempty"`
}

type nv struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cookie struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Path     string `json:"path,omitempty"`
	Domain   string `json:"domain,omitempty"`
	Expires  string `json:"expires,omitempty"`
	HTTPOnly bool   `json:"httpOnly,omitempty"`
	Secure   bool   `json:"secure,omitempty"`
}

type postData struct {
	MimeType string  `json:"mimeType"`
	Params   []param `json:"params"`
	Text     string  `json:"text"`
	// Encoding is Reprise's: "base64" when Text holds a binary body.
	Encoding string `json:"_encoding,omitempty"`
}

type param struct {
	Name        string `json:"name"`
	Value       string `json:"value,omitempty"`
	FileName    string `json:"fileName,omitempty"`
	ContentType string `json:"contentType,omitempty"`
}

type content struct {
	Size        int64  `json:"size"`
	Compression int64  `json:"compression,omitempty"`
	MimeType    string `json:"mimeType"`
	Text        string `json:"text,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
	// EncodedText is Reprise's: the body as sent, base64, when Text holds
	// it decoded from its Content-Encoding (as HAR and Playwright expect).
	EncodedText string `json:"_encodedText,omitempty"`
}

// timings are in milliseconds; -1 means not applicable.
type timings struct {
	Blocked float64 `json:"blocked"`
	DNS     float64 `json:"dns"`
	Connect float64 `json:"connect"`
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
	SSL     float64 `json:"ssl"`
}
