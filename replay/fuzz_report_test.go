package replay_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/htmlreport"
)

// FuzzReadReport: a saved run.json, whatever it holds, is read or refused
// with an error, and a report that reads is summarised and drawn as a page
// without a panic (reprise report run.json --html).
func FuzzReadReport(f *testing.F) {
	if b, err := os.ReadFile("testdata/report.golden.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"series":[{"t":3},{"t":1}],"stages":[{"name":"x","start_s":5,"end_s":1}],"abort":{"kind":"guard","at_s":-1}}`))
	f.Add([]byte(`{"version":1,"per_second":[1,2],"latency":{"hdr":"!!"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := replay.ReadReport(bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = rep.WriteSummary(io.Discard)
		_ = htmlreport.WriteReplay(io.Discard, rep) // may refuse an invalid series, never panic
		_, _ = rep.Latency.Decode()
	})
}
