package check

import (
	"bytes"
	"testing"
	"time"
)

// FuzzReadRun feeds arbitrary bytes to the run report reader and checks a
// small recording against whatever it accepts: errors are fine, panics
// are not, and every figure it prints is either measured or said not to be.
func FuzzReadRun(f *testing.F) {
	f.Add([]byte(`{"version":1,"speed":"1","scale":1,"requests":{"sent":3,"responses":3},"routes":[{"route":"GET /x","requests":3}]}`))
	f.Add([]byte(`{"version":1,"speed":"max","scale":0,"requests":{"sent":1},"per_second":[1,2,3],"refreshes_per_second":[0,1]}`))
	f.Add([]byte(`{"version":1,"speed":"2x","requests":{"sent":5,"errors":9},"think_time":{"count":1,"hdr":"HISTFAAAABx4nJNpmSzMwMDAwgABzFCaEUwPAfAAw/wDIA=="}}`))
	f.Add([]byte(`{"version":1,"speed":"0","sessions":{"total":1,"failed":3}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	rec := hand(hreq{sess: 0, dur: time.Millisecond, ttl: time.Second, flags: flagAuth}, hreq{sess: 0, off: time.Second}, hreq{sess: 1, off: 2 * time.Second, flags: flagRefresh})
	f.Fuzz(func(t *testing.T, b []byte) {
		rd, err := ReadRun(bytes.NewReader(b))
		if err != nil {
			return
		}
		res, err := CheckRun(rec, rd, DefaultThresholds())
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := res.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		if err := res.WriteJSON(&out); err != nil {
			t.Fatalf("JSON: %v", err)
		}
	})
}
