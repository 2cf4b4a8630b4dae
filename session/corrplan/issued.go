package corrplan

import (
	"hash/maphash"
	"slices"

	"github.com/reprise-tool/reprise/session"
)

// issued is a distinctive value a response issued, at its origin.
type issued struct {
	key vkey
	o   *origin
}

// bodyValues are the values a body issued (see bodyIssued), their
// origins ro's.
type bodyValues struct {
	ro   *routeOrigins
	list []issued
	ver  uint64 // new (from the Builder's bodyVers) with each list's origins
}

// headerField is one response header's field, as headerField reads it.
type headerField struct{ kind, name, value string }

// responseIssued keeps the distinctive values resp issues: its headers',
// then its body's.
//
// They are the distinctive fields of Fields(resp), read without making
// the map of them: a value is looked at in place and made a key only
// when Distinctive, the origin found by the field's bytes. A body whose
// JSON would make two leaves of one path, which Fields keeps the last of
// (see keyRule), is read by Fields' own reading.
func (b *Builder) responseIssued(sv *sessionValues, ro *routeOrigins, resp *session.Response) {
	for _, is := range b.headerIssued(ro, resp) {
		b.issue(sv, is.key, is.o)
	}
	list, bv := b.bodyIssued(ro, resp)
	b.issueBody(sv, list, bv)
}

// headerIssued returns the distinctive values resp's headers issue, in a
// buffer the next call reuses.
func (b *Builder) headerIssued(ro *routeOrigins, resp *session.Response) []issued {
	hs := b.hdrs[:0]
	for _, h := range resp.Header {
		kind, name, value, ok := readHeader(h)
		if !ok {
			continue
		}
		i := slices.IndexFunc(hs, func(f headerField) bool { return f.kind == kind && f.name == name })
		if i < 0 {
			hs = append(hs, headerField{})
			i = len(hs) - 1
		}
		hs[i] = headerField{kind, name, value} // a later field of a name replaces an earlier one
	}
	list := b.hdrIssued[:0]
	for _, f := range hs {
		if distinctiveAt(false, f.name, f.value) {
			b.fieldBuf = appendGeneralized(append(append(b.fieldBuf[:0], f.kind...), ':'), f.name)
			list = append(list, issued{b.key(f.value), originOf(b, ro, b.fieldBuf)})
		}
	}
	clear(hs) // the exchange's strings are not to be kept
	b.hdrs, b.hdrIssued = hs[:0], list[:0]
	return list
}

// bodyIssued returns the distinctive values resp's body issues, at ro's
// origins, and their entry in the cache when the body is cached. A body of some size is read once: the values of the next body
// identical to it (the same bytes, type and encoding: a catalogue, a
// configuration, a static file every client fetches) are taken from the
// last reading, so a recording of one large response fetched a thousand
// times costs one parse. Its values are the Builder's own (never the
// exchange's bytes).
func (b *Builder) bodyIssued(ro *routeOrigins, resp *session.Response) ([]issued, *bodyValues) {
	if len(resp.Body) == 0 {
		return nil, nil
	}
	var key uint64
	if len(resp.Body) >= bodyCacheFrom {
		var h maphash.Hash
		h.SetSeed(b.seed)
		h.WriteString(resp.Header.Get("Content-Type"))
		h.WriteByte(0)
		h.WriteString(resp.Header.Get("Content-Encoding"))
		h.WriteByte(0)
		h.Write(resp.Body)
		key = h.Sum64()
		if bv, ok := b.bodies[key]; ok {
			if bv.ro != ro {
				for i, is := range bv.list {
					bv.list[i].o = originOf(b, ro, is.o.field)
				}
				bv.ro = ro
				b.bodyVers++
				bv.ver = b.bodyVers
			}
			return bv.list, bv
		}
	}
	list := b.readBody(ro, resp)
	if key == 0 {
		return list, nil
	}
	if len(b.bodies) >= maxBodies || b.bodyVals+len(list) > maxBodyValues {
		clear(b.bodies)
		b.bodyVals = 0
	}
	b.bodyVers++
	bv := &bodyValues{ro: ro, list: slices.Clone(list), ver: b.bodyVers}
	b.bodies[key] = bv
	b.bodyVals += len(list)
	return bv.list, bv
}

// readBody returns the distinctive values of resp's body, in a buffer
// the next call reuses.
func (b *Builder) readBody(ro *routeOrigins, resp *session.Response) []issued {
	b.issuedBuf = b.issuedBuf[:0]
	body, mt, ok := readableBody(resp)
	if !ok {
		return nil
	}
	if mt != "application/x-www-form-urlencoded" && readsJSON(mt, body) {
		b.isink = issueSink{b: b, ro: ro}
		s := &b.scan
		*s = leafScanner{doc: body, sink: &b.isink, path: append(s.path[:0], "json:"...),
			stars: true, keys: pathSafeKeys, seen: s.seen[:0]}
		ok := s.value()
		s.doc, s.sink = nil, nil
		clear(s.seen[:cap(s.seen)]) // the body is not to be kept
		switch {
		case s.irregular:
			b.issuedBuf = b.issuedBuf[:0]
		case !ok:
			b.issuedBuf = b.issuedBuf[:0] // not JSON after all: none of its leaves
			return nil
		default:
			return b.issuedBuf
		}
	}
	var bf fieldSet
	mediaFields(mt, body, &bf)
	for path, f := range bf.m {
		if Distinctive(path, f.Value) {
			b.issuedBuf = append(b.issuedBuf, issued{b.key(f.Value), originOf(b, ro, Generalize(path))})
		}
	}
	return b.issuedBuf
}

// issueSink takes the leaves of a response's JSON body whose values are
// distinctive, at paths written as their fields (array elements as [*],
// keys pathSafeKeys: Generalize's writing).
type issueSink struct {
	b  *Builder
	ro *routeOrigins
}

func (k *issueSink) leaf(path, raw []byte, plain, _ bool) bool {
	b := k.b
	var key vkey
	if plain {
		if !distinctive(path, raw) {
			return true
		}
		key = keyOf(b, raw)
	} else {
		v, ok := unquote(raw, false)
		if !ok {
			return false
		}
		if !distinctive(path, v) {
			return true
		}
		key = b.key(v)
	}
	b.issuedBuf = append(b.issuedBuf, issued{key, originOf(b, k.ro, path)})
	return true
}
