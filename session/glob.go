package session

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// ExpandPaths resolves file names and glob patterns as Open does: globs
// expand in sorted order, the order given is kept, repeats are dropped,
// and a pattern that matches nothing is an error.
func ExpandPaths(paths ...string) ([]string, error) { return expand(paths) }

// expand is ExpandGlobs for recordings, with a hint when none is given.
func expand(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("no recording given: name at least one .rpz file")
	}
	return ExpandGlobs("recording", paths...)
}

// ExpandGlobs resolves file names and glob patterns (any name with one of
// "*?[") the way every command that reads files takes them: each pattern
// expands in sorted order, the order given is kept, repeats are dropped,
// and a pattern that matches nothing is an error, since a typo must not
// read as an empty input. noun names the files in errors ("recording",
// "file"). Names without a pattern are returned as given, unchecked.
func ExpandGlobs(noun string, paths ...string) ([]string, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no %s given", noun)
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		matches := []string{p}
		if strings.ContainsAny(p, "*?[") {
			g, err := filepath.Glob(p)
			if err != nil {
				return nil, fmt.Errorf("bad pattern %q: %w", p, err)
			}
			if len(g) == 0 {
				return nil, fmt.Errorf("no %s matches %q", noun, p)
			}
			sort.Strings(g)
			matches = g
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}
