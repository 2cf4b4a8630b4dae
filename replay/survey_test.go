package replay

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// surveyFlow is a login/token flow over n sessions, 10 requests each:
// more exchanges than the survey's batches hold at once, so its decoder
// reuses every buffer several times over.
func surveyFlow(n int) []*session.Exchange {
	var exs []*session.Exchange
	for i := range 10 {
		for s := range n {
			key, at := fmt.Sprintf("s%d", s), float64(i*n+s)
			if i == 0 {
				exs = append(exs, rec(key, "POST", "/login", at, at+0.5,
					withResponse(200, "application/json", fmt.Sprintf(`{"token":"tok-%032x"}`, s))))
				continue
			}
			exs = append(exs, rec(key, "GET", fmt.Sprintf("/api/%d", i), at, at+0.5,
				withHeader("Authorization", fmt.Sprintf("Bearer tok-%032x", s)),
				withResponse(200, "application/json", fmt.Sprintf(`{"n":%d,"pad":"%0200d"}`, i, 0))))
		}
	}
	return exs
}

// TestSurveyReadMatchesNext: the survey of a recording file (decoded into
// reused exchanges) equals the survey of the same exchanges handed out
// fresh, plan included, and a failing source's error comes through.
func TestSurveyReadMatchesNext(t *testing.T) {
	exs := surveyFlow(60) // 600 exchanges
	path := writeRecording(t, "test:flow", exs)
	m, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fromFile, err := SurveyRecording(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	fromSlice, err := SurveyRecording(context.Background(), source(exs...))
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.Exchanges != uint64(len(exs)) || fromSlice.Exchanges != uint64(len(exs)) {
		t.Fatalf("exchanges: file %d, slice %d, want %d", fromFile.Exchanges, fromSlice.Exchanges, len(exs))
	}
	if fromFile.First != fromSlice.First || fromFile.Last != fromSlice.Last || fromFile.Span() <= 0 {
		t.Errorf("span: file %d..%d, slice %d..%d", fromFile.First, fromFile.Last, fromSlice.First, fromSlice.Last)
	}
	if !fromFile.PlanComputed || len(fromFile.Plan.Rules) == 0 {
		t.Fatalf("no plan computed from the file: %+v", fromFile.Plan)
	}
	if !reflect.DeepEqual(fromFile.Plan.Rules, fromSlice.Plan.Rules) {
		t.Errorf("plans differ:\nfile  %+v\nslice %+v", fromFile.Plan.Rules, fromSlice.Plan.Rules)
	}

	broken := errors.New("disk gone")
	src := source(exs[:300]...)
	src.Err = broken
	if _, err := SurveyRecording(context.Background(), src); !errors.Is(err, broken) {
		t.Errorf("failing source: err %v, want %v", err, broken)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SurveyRecording(ctx, source(exs...)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err %v, want context.Canceled", err)
	}
}
