package http1

// Flag notes something a message's framing tolerated, for a recorder to
// warn about.
type Flag uint8

const (
	// FlagObsFold: a field was continued by obsolete line folding, joined
	// with a space.
	FlagObsFold Flag = 1 << iota
	// FlagDupLength: Content-Length repeated with the same value, in one
	// field ("5, 5") or several.
	FlagDupLength
	// FlagLengthAndEncoding: both Content-Length and Transfer-Encoding;
	// the Transfer-Encoding framed the body (RFC 9112 section 6.3).
	FlagLengthAndEncoding
	// FlagOtherCoding: a response's Transfer-Encoding does not end in
	// chunked: the body runs to the close.
	FlagOtherCoding
	// FlagEncoding10: Transfer-Encoding in an HTTP/1.0 message, whose
	// framing is then faulty (RFC 9112 section 6.1): the body runs to the
	// close.
	FlagEncoding10
)

// BodyKind says how a message body is delimited.
type BodyKind uint8

const (
	NoBody      BodyKind = iota // nothing follows the head
	LengthBody                  // Body.Length bytes follow
	ChunkedBody                 // chunked coding, then a trailer section
	CloseBody                   // everything up to the connection's close
)

// Body is a message's body framing.
type Body struct {
	Kind   BodyKind
	Length int64 // for LengthBody
}

// Framing gathers what a message's header fields say about its body and
// its connection. Feed it every field with Add or AddString (the zero
// value is ready; Reset makes it so again), then ask RequestBody or
// ResponseBody.
type Framing struct {
	HTTP10 bool // the message is HTTP/1.0: set before asking

	length    int64 // Content-Length + 1; 0 when absent
	lengths   int   // Content-Length values seen
	badLength bool
	encoding  bool // a Transfer-Encoding field with a value
	chunked   bool // and its final coding is chunked

	Close       bool // Connection: close
	KeepAlive   bool // Connection: keep-alive
	UpgradeConn bool // Connection: upgrade
	Upgrade     bool // an Upgrade field, even empty
	Flags       Flag // what was tolerated
}

// Reset makes f ready for another message.
func (f *Framing) Reset() { *f = Framing{} }

// Add notes one header field, name and value as SplitField gave them.
func (f *Framing) Add(name, value []byte) { add(f, name, value) }

// AddString is Add for strings.
func (f *Framing) AddString(name, value string) { add(f, name, value) }

// FoldedField notes that obsolete folding continued a field.
func (f *Framing) FoldedField() { f.Flags |= FlagObsFold }

func add[S text](f *Framing, name, value S) {
	switch len(name) {
	case 14:
		if EqualFold(name, "Content-Length") {
			addLength(f, value)
		}
	case 17:
		if EqualFold(name, "Transfer-Encoding") {
			addEncoding(f, value)
		}
	case 10:
		if EqualFold(name, "Connection") {
			addConnection(f, value)
		}
	case 7:
		if EqualFold(name, "Upgrade") {
			f.Upgrade = true
		}
	}
}

// addLength takes one Content-Length value, which may be a list of
// equal values.
func addLength[S text](f *Framing, v S) {
	for more := true; more; {
		var el S
		el, v, more = cutList(v)
		n, ok := ParseLength(el)
		if !ok || (f.lengths > 0 && f.length != n+1) {
			f.badLength = true
		} else {
			f.length = n + 1
		}
		f.lengths++
		if f.lengths > 1 {
			f.Flags |= FlagDupLength
		}
	}
}

func addEncoding[S text](f *Framing, v S) {
	v = trimOWS(v)
	if len(v) == 0 {
		return
	}
	f.encoding = true
	last := v
	if i := lastIndexByte(v, ','); i >= 0 {
		last = trimOWS(v[i+1:])
	}
	// A later field continues the list: its last coding is the final one.
	f.chunked = EqualFold(last, "chunked")
}

func addConnection[S text](f *Framing, v S) {
	for more := len(v) > 0; more; {
		var el S
		el, v, more = cutList(v)
		switch {
		case EqualFold(el, "close"):
			f.Close = true
		case EqualFold(el, "keep-alive"):
			f.KeepAlive = true
		case EqualFold(el, "upgrade"):
			f.UpgradeConn = true
		}
	}
}

// ParseLength parses a Content-Length value: decimal digits alone (no
// sign, no space), within int64.
func ParseLength[S text](v S) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		d := v[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		if n > (1<<63-1-9)/10 && (n > (1<<63-1)/10 || int64(d-'0') > (1<<63-1)-n*10) {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// Length returns the Content-Length, -1 when absent or invalid.
func (f *Framing) Length() int64 {
	if f.badLength {
		return -1
	}
	return f.length - 1
}

// HasLength reports whether a Content-Length field was seen.
func (f *Framing) HasLength() bool { return f.lengths > 0 }

// Encoded reports whether a Transfer-Encoding field was seen.
func (f *Framing) Encoded() bool { return f.encoding }

// RequestBody decides a request body's framing (RFC 9112 section 6.3):
// chunked, counted or none; any other Transfer-Encoding, or a bad
// Content-Length, leaves its end unknown.
func (f *Framing) RequestBody() (Body, error) {
	if f.encoding {
		if f.lengths > 0 {
			f.Flags |= FlagLengthAndEncoding
		}
		if !f.chunked || f.HTTP10 {
			return Body{}, ErrBadEncoding
		}
		return Body{Kind: ChunkedBody}, nil
	}
	if f.badLength {
		return Body{}, ErrBadLength
	}
	if f.length > 1 {
		return Body{Kind: LengthBody, Length: f.length - 1}, nil
	}
	return Body{}, nil
}

// ResponseBody decides the framing of a response to a request of the
// given method (RFC 9112 section 6.3). 1xx (101 included: what follows is
// another protocol), 204 and 304 responses and responses to HEAD have no
// body, whatever their fields say; a successful CONNECT's tunnel is the
// caller's to handle.
func (f *Framing) ResponseBody(method string, status int) (Body, error) {
	if status < 200 || status == 204 || status == 304 || method == "HEAD" {
		return Body{}, nil
	}
	if f.encoding {
		if f.lengths > 0 {
			f.Flags |= FlagLengthAndEncoding
		}
		switch {
		case f.HTTP10:
			f.Flags |= FlagEncoding10
			return Body{Kind: CloseBody}, nil
		case !f.chunked:
			f.Flags |= FlagOtherCoding
			return Body{Kind: CloseBody}, nil
		}
		return Body{Kind: ChunkedBody}, nil
	}
	switch {
	case f.badLength:
		return Body{}, ErrBadLength
	case f.length == 1:
		return Body{}, nil
	case f.length > 1:
		return Body{Kind: LengthBody, Length: f.length - 1}, nil
	}
	return Body{Kind: CloseBody}, nil
}

// Persistent reports whether the connection can carry another message
// after this one (RFC 9112 section 9.3): not after Connection: close, nor
// after HTTP/1.0 without keep-alive, nor after a body delimited by the
// close.
func (f *Framing) Persistent(b Body) bool {
	switch {
	case f.Close, b.Kind == CloseBody:
		return false
	case f.HTTP10:
		return f.KeepAlive
	}
	return true
}

// Warnings appends to dst a recorder's warning for each framing flag but
// FlagObsFold (which a recorder reports with the field it continued), in
// the words every recorder uses.
func (f *Framing) Warnings(dst []string) []string {
	if f.Flags&FlagDupLength != 0 {
		dst = append(dst, "Content-Length repeated with the same value")
	}
	if f.Flags&FlagLengthAndEncoding != 0 {
		dst = append(dst, "both Content-Length and Transfer-Encoding: framed by Transfer-Encoding")
	}
	if f.Flags&FlagOtherCoding != 0 {
		dst = append(dst, "Transfer-Encoding does not end in chunked: read to the close")
	}
	if f.Flags&FlagEncoding10 != 0 {
		dst = append(dst, "Transfer-Encoding in HTTP/1.0: read to the close")
	}
	return dst
}
