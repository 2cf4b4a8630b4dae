package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/session"
)

// clearSample is how many exchanges inspect reads to tell whether a
// recording holds credentials in clear: enough to meet a login and the
// requests after it, few enough to cost nothing next to the summary.
const clearSample = 2000

// warnClearSecrets writes a warning to w when the recordings at paths hold
// credentials in clear (made with --keep-secrets, or by an older Reprise
// that hashed only passwords): whoever holds such a file can act as its
// users. Files it cannot open are left to the summary to report.
func warnClearSecrets(w io.Writer, paths []string) {
	files, err := session.ExpandPaths(paths...)
	if err != nil {
		return
	}
	rd, err := session.Open(files...)
	if err != nil {
		return
	}
	defer rd.Close()
	c, err := redact.FindClear(rd.Metadata(), rd, clearSample)
	if err != nil || !c.Any() {
		return
	}
	why := "it was recorded with --keep-secrets"
	if !c.Kept {
		why = fmt.Sprintf("credentials in clear found in its first %d exchanges (%s); it was made before they were hashed by default", c.Sampled, strings.Join(c.Rules, ", "))
	}
	fmt.Fprintf(w, "reprise: WARNING: this recording holds working credentials: %s. Whoever holds the file can act as its users: keep it private (chmod 600) or record again with the defaults.\n", why)
}
