package replay

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// FuzzMergeReports: two saved shard reports, whatever they hold, are
// merged or refused with a *MergeError (or a read error); never a panic,
// and a merge that succeeds counts what the two reports count.
func FuzzMergeReports(f *testing.F) {
	enc := func(r *Report) []byte {
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			f.Fatal(err)
		}
		return b.Bytes()
	}
	ms := []time.Duration{time.Millisecond, 3 * time.Millisecond, 2 * time.Second}
	f.Add(enc(fakeShard(0, 2, ms, "abc")), enc(fakeShard(1, 2, ms[:1], "abc")))
	f.Add(enc(fakeShard(0, 2, ms, "abc")), enc(fakeShard(1, 2, ms, "def")))
	f.Add(enc(fakeShard(0, 2, ms, "abc")), enc(fakeShard(1, 3, ms, "abc")))
	f.Add(enc(fakeShard(0, 1, ms, "abc")), []byte(`{"version":1,"recording":{"sha256":"abc"},"latency":{"count":1,"hdr":"!!"}}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ra, err := ReadReport(bytes.NewReader(a))
		if err != nil {
			return
		}
		rb, err := ReadReport(bytes.NewReader(b))
		if err != nil {
			return
		}
		m, err := MergeReports(ra, rb)
		if err != nil {
			if !errors.Is(err, ErrMerge) {
				t.Fatalf("merge failed with %v, not an ErrMerge", err)
			}
			return
		}
		if m.Requests.Sent != ra.Requests.Sent+rb.Requests.Sent {
			t.Fatalf("merged sent %d, shards %d + %d", m.Requests.Sent, ra.Requests.Sent, rb.Requests.Sent)
		}
		_ = m.WriteSummary(io.Discard)
		_ = m.WriteJSON(io.Discard)
	})
}
