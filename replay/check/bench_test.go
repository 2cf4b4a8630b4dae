package check

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// benchPopulation is about 29,000 requests of 400 users over 10 minutes.
func benchPopulation() population {
	p := defaultPopulation()
	p.users, p.arrive = 400, 10*time.Minute
	return p
}

// BenchmarkCheckPlan measures the prediction (three simulations of the
// schedule) per recorded request.
func BenchmarkCheckPlan(b *testing.B) {
	rec := benchPopulation().recording(b, Filter{})
	plan := Plan{SpeedRamp: mustRamp(b, "1x:1m,5x:1m,10x"), Rate: 500, Scale: 2}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := CheckPlan(rec, plan, DefaultThresholds()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rec.Requests))*float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

// BenchmarkLoad measures reading a recording file into a Recording.
func BenchmarkLoad(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.rpz")
	w, err := session.Create(path, session.Metadata{Source: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	xs := benchPopulation().exchanges()
	if _, err := session.Copy(w, session.NewSliceSource(xs...)); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Load(context.Background(), []string{path}, LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(xs))*float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
}
