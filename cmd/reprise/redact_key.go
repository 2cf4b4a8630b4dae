package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/reprise-tool/reprise/capture/redact"
)

// readRedactKey reads a --redact-key-file: its bytes, less surrounding
// white space (a key written with echo ends in a newline), are the
// secret. The file is the team's to keep; Reprise never writes it, nor
// the key, anywhere.
func readRedactKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--redact-key-file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, fmt.Errorf("--redact-key-file %s: the key is %d bytes; give at least 16, e.g. head -c 32 /dev/urandom | base64 > %s", path, len(b), path)
	}
	return b, nil
}

// redactionLines is what every summary of a recording (capture, import,
// proxy, shadow -o) says of its redaction, given Metadata.Redaction: a
// loud warning first when it holds credentials in clear (--keep-secrets),
// then the rules that fired.
func redactionLines(redaction []string) string {
	var s string
	if len(redaction) > 0 && redaction[0] == redact.ClearMark {
		s = "  WARNING: credentials kept in clear (--keep-secrets): whoever holds this recording can act as its users\n"
	}
	if len(redaction) > 0 {
		s += "  redacted: " + strings.Join(redaction, ", ") + "\n"
	}
	return s
}
