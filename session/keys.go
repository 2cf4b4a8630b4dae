package session

import "fmt"

// SessionKeys says where a replay takes its sessions from. The replay
// command, its dry run and every library caller parse and resolve it here,
// so they cannot disagree about which sessions a recording has.
type SessionKeys string

const (
	// KeysAuto uses the recorded keys when a capture tracked sessions into
	// the recording (its metadata lists SessionRules), else recomputes.
	KeysAuto SessionKeys = "auto"
	// KeysRecorded uses the keys stored with each exchange.
	KeysRecorded SessionKeys = "recorded"
	// KeysRecompute runs the identity tracker over the exchanges again.
	KeysRecompute SessionKeys = "recompute"
	// KeysConnection drops the keys: each connection is one session.
	KeysConnection SessionKeys = "connection"
)

// ParseSessionKeys checks a session-keys name.
func ParseSessionKeys(s string) (SessionKeys, error) {
	switch k := SessionKeys(s); k {
	case KeysAuto, KeysRecorded, KeysRecompute, KeysConnection:
		return k, nil
	}
	return "", fmt.Errorf("session keys %q: use auto, recorded, recompute or connection", s)
}

// Resolve turns KeysAuto into KeysRecorded or KeysRecompute for the
// recordings described by md; the other values stay as they are.
func (k SessionKeys) Resolve(md []Metadata) SessionKeys {
	if k != KeysAuto && k != "" {
		return k
	}
	if Tracked(md) {
		return KeysRecorded
	}
	return KeysRecompute
}

// Tracked reports whether a capture tracked sessions into the recordings
// described by md: whether any lists the session rules it used.
func Tracked(md []Metadata) bool {
	for _, m := range md {
		if len(m.SessionRules) > 0 {
			return true
		}
	}
	return false
}
