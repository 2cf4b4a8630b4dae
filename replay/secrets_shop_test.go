package replay_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/sim"
	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/session"
)

// TestReplayShopNoSecrets is issue 20's acceptance test on the demo
// shop: its simulated users are recorded through the proxy with the
// default redaction, and a plain proxy between the recording proxy and
// the shop sees the same traffic unredacted. Every credential in that
// traffic (passwords, bearer JWTs, refresh tokens, session cookies) is
// looked for in the whole recording: none is found in clear. The
// recording's sessions are those of the unredacted traffic, and it
// replays, with its own recorded sessions, against a fresh shop with no
// violation.
func TestReplayShopNoSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("records and replays the simulated users (about 15 s)")
	}
	srv := startShop(t)
	cfg := sim.Config{
		Users: 12, Seed: 20, ArrivalWindow: time.Second,
		Think:    sim.LogNormal{Median: 100 * time.Millisecond, Sigma: 0.5},
		Duration: 10 * time.Second, MaxRequests: 5_000, MaxSessions: 2,
	}
	path, raw := shoptest.RecordThrough(t, srv.URL(), proxy.RecordConfig{}, func(base string) {
		cfg.BaseURL = base
		truth, err := sim.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if truth.Stop != "done" {
			t.Fatalf("simulation stopped by %s", truth.Stop)
		}
	})
	recorded := srv.Stats()
	if recorded.Refreshes == 0 {
		t.Fatal("the run made no refresh: the test shows nothing about lineage")
	}
	secrets := shoptest.Secrets(raw)
	if len(secrets) < cfg.Users*2 {
		t.Fatalf("only %d credentials in the traffic: the scan misses them", len(secrets))
	}
	t.Logf("%d exchanges, %d logins, %d refreshes; %d credentials looked for", len(raw), recorded.Logins, recorded.Refreshes, len(secrets))
	if found := shoptest.FindInRecording(t, path, secrets); len(found) > 0 {
		t.Errorf("%d of %d credentials in clear, e.g.:\n%s", len(found), len(secrets), strings.Join(found[:min(len(found), 10)], "\n"))
	}

	rd, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	xs := shoptest.Collect(t, rd)
	got := shoptest.SessionShapes(rd.Timelines())
	if want := shoptest.SessionShapes(shoptest.Track(t, raw)); !reflect.DeepEqual(got, want) {
		t.Errorf("sessions of the recording:\n%s\nof the unredacted traffic:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	target := startShopTTL(t, targetTTL)
	var res collect
	r, err := replay.New(target.URL(), replay.WithPacer(replay.Speed(5)),
		replay.WithCredentials(credentials()), replay.WithObserver(&res))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), &shoptest.SliceSource{Exchanges: xs})
	if err != nil {
		t.Fatal(err)
	}
	v := target.Stats().Violations
	if !rep.Completed {
		t.Errorf("replay did not complete: %s", rep.Failure)
	}
	if v.SupersededToken != 0 || v.RefreshReuse != 0 || v.UnknownRefresh != 0 || v.MissingToken != 0 || v.AfterLogout != 0 {
		t.Errorf("violations %+v", v)
	}
	if rep.Lag.Max <= 1000 && (v.OutOfOrder != 0 || v.ExpiredToken+v.InvalidToken > recorded.Violations.ExpiredToken) {
		t.Errorf("violations %+v (recorded %+v)", v, recorded.Violations)
	}
	if rep.Requests.Uncorrelated != 0 || rep.Sessions.Failed+rep.Sessions.Uncorrelated != 0 {
		t.Errorf("requests %+v sessions %+v %v", rep.Requests, rep.Sessions, rep.Problems)
	}
}
