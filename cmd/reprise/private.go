package main

import "os"

// createPrivate creates (or truncates) path readable by its owner only: a
// report or HTML page quotes recorded requests, and a recording may be
// copied around teams, so what the CLI writes is not world-readable. An
// existing file keeps its mode, as os.Create would.
func createPrivate(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
}
