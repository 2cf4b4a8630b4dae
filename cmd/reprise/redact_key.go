package main

import (
	"bytes"
	"fmt"
	"os"

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

// clearSecretsWarning is the line a summary starts with when the
// recording holds credentials in clear (--keep-secrets).
func clearSecretsWarning(redaction []string) string {
	if len(redaction) > 0 && redaction[0] == redact.ClearMark {
		return "  WARNING: credentials kept in clear (--keep-secrets): whoever holds this recording can act as its users\n"
	}
	return ""
}
