package http1

import "github.com/reprise-tool/reprise/session"

// IsHopByHop reports whether a field, by its name in any case, describes
// one connection rather than the message, so that a proxy or a replay
// does not forward it (RFC 9110 section 7.6.1): Connection, Keep-Alive,
// Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
// Transfer-Encoding and Upgrade, and Expect, whose 100-continue exchange
// belongs to the connection it was sent on. Fields named in a Connection
// field are hop-by-hop too: see Listed. It compares in place; it does not
// allocate.
func IsHopByHop[S text](name S) bool {
	var hop string
	switch len(name) {
	case 2:
		hop = "TE"
	case 6:
		hop = "Expect"
	case 7:
		if EqualFold(name, "Trailer") {
			return true
		}
		hop = "Upgrade"
	case 10:
		if EqualFold(name, "Connection") {
			return true
		}
		hop = "Keep-Alive"
	case 16:
		hop = "Proxy-Connection"
	case 17:
		hop = "Transfer-Encoding"
	case 18:
		hop = "Proxy-Authenticate"
	case 19:
		hop = "Proxy-Authorization"
	default:
		return false
	}
	return EqualFold(name, hop)
}

// Listed reports whether name is one of the field names a Connection
// field of hdr lists, which makes it hop-by-hop in that message.
func Listed(hdr session.Headers, name string) bool {
	for _, h := range hdr {
		if len(h.Name) == 10 && EqualFold(h.Name, "Connection") && HasToken(h.Value, name) {
			return true
		}
	}
	return false
}

// HasConnection reports whether hdr has a Connection field, whose listed
// names Listed then looks for: a sender asks once per message, not once
// per field.
func HasConnection(hdr session.Headers) bool {
	for _, h := range hdr {
		if len(h.Name) == 10 && EqualFold(h.Name, "Connection") {
			return true
		}
	}
	return false
}

// HopByHop reports whether the field name is hop-by-hop in a message with
// the fields hdr: always so (IsHopByHop), or listed in its Connection.
func HopByHop(hdr session.Headers, name string) bool {
	return IsHopByHop(name) || Listed(hdr, name)
}
