package tlsdecrypt

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Random is a ClientHello random: the key of every line of a key log.
type Random [32]byte

// secrets are what a key log says about one connection. Slices are never
// changed once stored, so a copy of the struct may be read without a lock.
type secrets struct {
	master    []byte // TLS 1.2: CLIENT_RANDOM
	clientHS  []byte // TLS 1.3: CLIENT_HANDSHAKE_TRAFFIC_SECRET
	serverHS  []byte // TLS 1.3: SERVER_HANDSHAKE_TRAFFIC_SECRET
	clientApp []byte // TLS 1.3: CLIENT_TRAFFIC_SECRET_0
	serverApp []byte // TLS 1.3: SERVER_TRAFFIC_SECRET_0
	// clientEarly is TLS 1.3's CLIENT_EARLY_TRAFFIC_SECRET, logged when
	// the client offered 0-RTT data on a resumed session.
	clientEarly []byte
}

// BadLine names a key log line that could not be used. Bad lines are
// counted and skipped, never fatal: a key log is often written by several
// programs at once and may hold lines of other formats.
type BadLine struct {
	File   string
	Line   int
	Reason string
}

func (b BadLine) String() string { return fmt.Sprintf("%s:%d: %s", b.File, b.Line, b.Reason) }

// maxBadKept bounds the bad lines remembered by name; all are counted.
const maxBadKept = 64

// KeyLog holds the secrets of NSS key log files (the SSLKEYLOGFILE format
// written by curl, Firefox, Chromium and Go's tls.Config.KeyLogWriter),
// keyed by ClientHello random. It is safe for concurrent use: a live
// capture reads it while Refresh tails the files.
type KeyLog struct {
	mu    sync.RWMutex
	m     map[Random]*secrets
	files []*logFile
	// sessions maps TLS 1.2 session tickets and IDs of decrypted
	// connections to their master secret: a resumed connection reuses it,
	// and clients log only full handshakes.
	sessions map[string][]byte
	nBad     uint64
	bad      []BadLine
	lines    uint64
}

// logFile is a key log file read so far: the offset and line number
// reached, and a last line still without its newline.
type logFile struct {
	path    string
	mayLack bool // the file may not exist yet (Follow)
	off     int64
	line    int
	partial []byte
}

// NewKeyLog returns an empty key log.
func NewKeyLog() *KeyLog {
	return &KeyLog{m: map[Random]*secrets{}, sessions: map[string][]byte{}}
}

// maxSessions bounds the TLS 1.2 sessions remembered for resumption.
const maxSessions = 100_000

// learnSession remembers the master secret of a session ticket or ID.
func (k *KeyLog) learnSession(key string, master []byte) {
	if k == nil || len(key) <= 2 {
		return
	}
	k.mu.Lock()
	if len(k.sessions) < maxSessions {
		k.sessions[key] = master
	}
	k.mu.Unlock()
}

// resumed returns the master secret of a session ticket or ID.
func (k *KeyLog) resumed(key string) []byte {
	if k == nil || len(key) <= 2 {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.sessions[key]
}

// AddFile reads the key log file at path and remembers it, so Refresh
// reads what is appended to it later.
func (k *KeyLog) AddFile(path string) error {
	f := &logFile{path: path}
	if err := k.readFile(f); err != nil {
		return err
	}
	k.mu.Lock()
	k.files = append(k.files, f)
	k.mu.Unlock()
	return nil
}

// Follow is AddFile for live capture: the file may not exist yet, and is
// read by Refresh once it does.
func (k *KeyLog) Follow(path string) error {
	f := &logFile{path: path, mayLack: true}
	if err := k.readFile(f); err != nil {
		return err
	}
	k.mu.Lock()
	k.files = append(k.files, f)
	k.mu.Unlock()
	return nil
}

// Refresh reads the lines appended to every file added with AddFile since
// it was last read. A file that shrank (rewritten) is read again from its
// start. Live capture calls it while connections wait for their keys.
func (k *KeyLog) Refresh() error {
	k.mu.RLock()
	files := k.files
	k.mu.RUnlock()
	var errs []error
	for _, f := range files {
		errs = append(errs, k.readFile(f))
	}
	return errors.Join(errs...)
}

// Follows reports whether the key log has files that Refresh re-reads.
func (k *KeyLog) Follows() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.files) > 0
}

func (k *KeyLog) readFile(f *logFile) error {
	fh, err := os.Open(f.path)
	if err != nil {
		if f.mayLack && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("tlsdecrypt: key log: %w", err)
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err == nil && fi.Size() < f.off {
		f.off, f.line, f.partial = 0, 0, nil
	}
	if _, err := fh.Seek(f.off, io.SeekStart); err != nil {
		return fmt.Errorf("tlsdecrypt: key log %s: %w", f.path, err)
	}
	data, err := io.ReadAll(io.LimitReader(fh, 64<<20))
	if err != nil {
		return fmt.Errorf("tlsdecrypt: key log %s: %w", f.path, err)
	}
	f.off += int64(len(data))
	if len(f.partial) > 0 {
		data = append(f.partial, data...)
		f.partial = nil
	}
	last := bytes.LastIndexByte(data, '\n')
	if last < len(data)-1 {
		// The writer may be in the middle of a line: keep it for later.
		f.partial = append([]byte(nil), data[last+1:]...)
		data = data[:last+1]
	}
	k.parse(f.path, &f.line, data)
	return nil
}

// Read adds every line of r to the key log; name says where the lines came
// from in BadLine (a file name, or "pcapng DSB #2").
func (k *KeyLog) Read(name string, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("tlsdecrypt: key log %s: %w", name, err)
	}
	line := 0
	k.parse(name, &line, data)
	return nil
}

func (k *KeyLog) parse(name string, line *int, data []byte) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		*line++
		if reason := k.addLine(sc.Bytes()); reason != "" {
			k.mu.Lock()
			k.nBad++
			if len(k.bad) < maxBadKept {
				k.bad = append(k.bad, BadLine{File: name, Line: *line, Reason: reason})
			}
			k.mu.Unlock()
		}
	}
	if sc.Err() != nil {
		*line++
		k.mu.Lock()
		k.nBad++
		if len(k.bad) < maxBadKept {
			k.bad = append(k.bad, BadLine{File: name, Line: *line, Reason: "line longer than 1 MiB; rest of input skipped"})
		}
		k.mu.Unlock()
	}
}

// ignored are labels of the format that decryption does not need.
var ignored = map[string]bool{
	"EARLY_EXPORTER_SECRET": true, "EXPORTER_SECRET": true,
	"RSA": true,
}

// later reports a traffic secret after a key update (OpenSSL logs
// CLIENT_TRAFFIC_SECRET_N, others a number): it is derived, not needed.
func later(label string) bool {
	for _, p := range []string{"CLIENT_TRAFFIC_SECRET_", "SERVER_TRAFFIC_SECRET_"} {
		if n, ok := strings.CutPrefix(label, p); ok && n != "0" {
			return true
		}
	}
	return false
}

// addLine stores one line's secret, or says why it could not.
func (k *KeyLog) addLine(l []byte) string {
	l = bytes.TrimSpace(l)
	if len(l) == 0 || l[0] == '#' {
		return ""
	}
	k.mu.Lock()
	k.lines++
	k.mu.Unlock()
	f := bytes.Fields(l)
	if len(f) != 3 {
		return fmt.Sprintf("%d fields, want 3 (LABEL CLIENT_RANDOM SECRET)", len(f))
	}
	label := string(f[0])
	if ignored[label] || later(label) {
		return ""
	}
	var r Random
	if len(f[1]) != 64 {
		return "client random is not 64 hex digits"
	}
	if _, err := hex.Decode(r[:], f[1]); err != nil {
		return "client random is not hex"
	}
	sec := make([]byte, hex.DecodedLen(len(f[2])))
	if _, err := hex.Decode(sec, f[2]); err != nil || len(sec) == 0 {
		return "secret is not hex"
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.m[r]
	s := secrets{}
	if old != nil {
		s = *old
	}
	switch label {
	case "CLIENT_RANDOM":
		if len(sec) != 48 {
			return fmt.Sprintf("master secret of %d bytes, want 48", len(sec))
		}
		s.master = sec
	case "CLIENT_HANDSHAKE_TRAFFIC_SECRET":
		s.clientHS = sec
	case "SERVER_HANDSHAKE_TRAFFIC_SECRET":
		s.serverHS = sec
	case "CLIENT_TRAFFIC_SECRET_0":
		s.clientApp = sec
	case "SERVER_TRAFFIC_SECRET_0":
		s.serverApp = sec
	case "CLIENT_EARLY_TRAFFIC_SECRET":
		s.clientEarly = sec
	default:
		return fmt.Sprintf("unknown label %.40q", label)
	}
	k.m[r] = &s
	return ""
}

// lookup returns the secrets logged for a ClientHello random.
func (k *KeyLog) lookup(r Random) (secrets, bool) {
	if k == nil {
		return secrets{}, false
	}
	k.mu.RLock()
	s, ok := k.m[r]
	k.mu.RUnlock()
	if !ok {
		return secrets{}, false
	}
	return *s, true
}

// KeyLogStats say what the key log holds and what it could not read.
type KeyLogStats struct {
	Connections int       // client randoms with at least one secret
	Lines       uint64    // lines read, not counting blanks and comments
	Bad         uint64    // lines skipped as unusable
	FirstBad    []BadLine // the first bad lines, by file and line number
}

// Stats returns what the key log holds so far.
func (k *KeyLog) Stats() KeyLogStats {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return KeyLogStats{Connections: len(k.m), Lines: k.lines, Bad: k.nBad, FirstBad: append([]BadLine(nil), k.bad...)}
}
