package correlate

import (
	"bytes"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
	"github.com/reprise-tool/reprise/session/pbwire"
)

// LearnGRPC learns the live counterparts of the values in rec's recorded
// gRPC response messages, read without a schema (session/pbwire): the
// string and bytes fields at the same place (message, field number and
// position) on both sides, when the recorded one is token-like (16 bytes
// or more, no separators) and differs. Later requests then carry the live
// value where they carried the recorded one: a token in authorization
// metadata, or an id or refresh token inside a message, the message
// re-encoded when the live value's length differs (see rewriteGRPC). The
// replay engine and the shadow mirror both learn this way. It returns the
// values learned.
func (t *Table) LearnGRPC(rec *session.Exchange, live *session.Response) int {
	recorded, _ := http2.Payloads(rec, true) // a cut message ends the list: learn from those before it
	lx := session.Exchange{Response: *live}
	got, _ := http2.Payloads(&lx, true)
	n := 0
	for i := range min(len(recorded), len(got)) {
		rf, err1 := pbwire.Parse(recorded[i])
		lf, err2 := pbwire.Parse(got[i])
		if err1 == nil && err2 == nil {
			n += t.pairFields(rf, lf)
		}
	}
	return n
}

// pairFields maps the token-like values of rec to those of live at the
// same place, descending into nested messages.
func (t *Table) pairFields(rec, live []pbwire.Field) int {
	n := 0
	for i := range min(len(rec), len(live)) {
		a, b := rec[i], live[i]
		if a.Num != b.Num || a.Kind != b.Kind {
			continue
		}
		switch a.Kind {
		case pbwire.Message:
			n += t.pairFields(a.Fields, b.Fields)
		case pbwire.String, pbwire.Bytes:
			if len(a.Bytes) >= 16 && !bytes.ContainsAny(a.Bytes, " \n\t\"&=;,") && !bytes.Equal(a.Bytes, b.Bytes) {
				t.Map(string(a.Bytes), string(b.Bytes))
				n++
			}
		}
	}
	return n
}
