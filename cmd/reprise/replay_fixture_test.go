package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
)

// TestReplayRedactedFixture replays the bundled recording, whose login
// passwords are redacted, against a fresh shop: without --credentials the
// logins fail, the sessions' later requests have no live token, and the run
// must not call itself complete; with --credentials it completes and the
// shop sees its sessions in order with live tokens.
func TestReplayRedactedFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("replays against a real shop")
	}
	rec := filepath.Join("..", "..", "fixtures", "testdata", "shop.rpz")

	s := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
	var out, errb bytes.Buffer
	code := run([]string{"replay", rec, "--target", s.URL(), "--speed", "10", "--progress", "0"}, &out, &errb)
	if code != exitFailure {
		t.Fatalf("without credentials: exit %d, want %d\n%s%s", code, exitFailure, out.String(), errb.String())
	}
	if !strings.Contains(out.String()+errb.String(), "--credentials") {
		t.Errorf("the failure does not name --credentials:\n%s%s", out.String(), errb.String())
	}

	creds := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(creds, []byte("user,password\nstaging-user,shop-demo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := shoptest.StartShop(t, shop.Config{NoServiceTime: true})
	out.Reset()
	errb.Reset()
	code = run([]string{"replay", rec, "--target", s2.URL(), "--speed", "10", "--progress", "0", "--credentials", creds}, &out, &errb)
	if code != exitOK {
		t.Fatalf("with credentials: exit %d\n%s%s", code, out.String(), errb.String())
	}
	st := s2.Stats()
	v := st.Violations
	if v.ExpiredToken != 0 || v.SupersededToken != 0 || v.RefreshReuse != 0 || v.OutOfOrder != 0 {
		t.Errorf("shop violations after the replay: %+v", v)
	}
	if st.Logins != 17 {
		t.Errorf("shop saw %d logins, want the recording's 17", st.Logins)
	}
}
