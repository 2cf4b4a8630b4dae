package session

// Metadata describes how a recording was made. It is the first record of
// every recording part, and is written again (updated) when a part is closed
// so its counters are final. It is stored as JSON inside the binary record,
// so fields can be added without a format version change.
type Metadata struct {
	// Source is where the traffic came from: "iface:eth0", "pcap:a.pcap",
	// "proxy:127.0.0.1:9000->http://127.0.0.1:8089", "import:...".
	Source string `json:"source"`
	// Filter is the capture filter in force (BPF expression or ports).
	Filter string `json:"filter,omitempty"`
	// Host is the name of the machine that recorded.
	Host string `json:"host,omitempty"`
	// Tool is the version string of the program that wrote the file.
	Tool string `json:"tool,omitempty"`
	// Start and End bound the capture in Unix nanoseconds.
	Start int64 `json:"start,omitempty"`
	End   int64 `json:"end,omitempty"`
	// MaxBody is the per-body byte cap in force.
	MaxBody int64 `json:"max_body,omitempty"`
	// Redaction names what was redacted ("header:Authorization", ...);
	// empty when nothing was.
	Redaction []string `json:"redaction,omitempty"`
	// SessionRules lists the session extractors used by the identity
	// tracker at capture time, in order.
	SessionRules []string `json:"session_rules,omitempty"`
	Counters     Counters `json:"counters"`
}

// Counters are what a capture saw and what it lost. Every loss is counted
// here; nothing is dropped silently.
type Counters struct {
	PacketsSeen    uint64 `json:"packets_seen"`
	PacketsDropped uint64 `json:"packets_dropped"` // by the kernel
	// PacketsDuplicate counts packets seen twice (both directions on lo).
	PacketsDuplicate uint64 `json:"packets_duplicate,omitempty"`
	PacketsMalformed uint64 `json:"packets_malformed,omitempty"`
	Connections      uint64 `json:"connections"`
	Exchanges        uint64 `json:"exchanges"`
	Incomplete       uint64 `json:"incomplete"`
	// Unsupported counts connections skipped because they carried TLS,
	// HTTP/2, WebSocket or other non-HTTP/1 traffic, keyed by kind.
	Unsupported map[string]uint64 `json:"unsupported,omitempty"`
	// TLS counts connections decrypted with a key log, keyed by their
	// parameters ("TLS 1.3 TLS_AES_128_GCM_SHA256 sni=example.com
	// alpn=http/1.1"); never their keys.
	TLS          map[string]uint64 `json:"tls,omitempty"`
	BytesWritten uint64            `json:"bytes_written,omitempty"`
}

// Timeline is one session's story, computed by the identity tracker and
// stored in the recording (as JSON) so that inspect and check need not
// recompute it; it can always be recomputed from the exchanges.
type Timeline struct {
	Key       string          `json:"key"`
	Subject   string          `json:"subject,omitempty"` // user id when known (JWT sub, login name hash)
	Start     int64           `json:"start"`
	End       int64           `json:"end"`
	Exchanges int             `json:"exchanges"`
	Logins    int             `json:"logins"`
	Refreshes int             `json:"refreshes"`
	Proactive int             `json:"proactive_refreshes"`
	Reactive  int             `json:"reactive_refreshes"`
	Logouts   int             `json:"logouts"`
	Rejected  int             `json:"rejected"` // 401s
	Events    []TimelineEvent `json:"events,omitempty"`
	// Via says what first identified the session: "login", "refresh",
	// "bearer", "cookie:NAME", "header:NAME", "claim:NAME", "query:NAME",
	// "connection" or "client".
	Via string `json:"via,omitempty"`
	// EndedBy says how the session ended: "logout", "idle" (no request for
	// the tracker's idle time), or "" when it was open at the end.
	EndedBy string `json:"ended_by,omitempty"`
}

// TimelineEvent is one token event placed on a session's timeline.
type TimelineEvent struct {
	At    int64      `json:"at"`    // Unix ns
	Index int        `json:"index"` // which of the session's requests, from 0
	Event TokenEvent `json:"event"`
}
