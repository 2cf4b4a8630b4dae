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
	// Correlation is the correlation plan computed as the recording was
	// written (package session/corrplan); nil in recordings made before
	// it existed, or by a writer that computed none. A replay computes
	// one from the exchanges when it is missing.
	Correlation *CorrelationPlan `json:"correlation,omitempty"`
}

// CorrelationPlan says which values the recorded responses issued that
// later requests carry back: the only ones a replay needs to learn from
// the live responses. Every other response can be read for its status
// and size alone, and its recorded body dropped before it is sent.
type CorrelationPlan struct {
	// Rules name the places whose values are carried back, by route.
	Rules []CorrelationRule `json:"rules"`
	// Unreplaced are places of requests that carry a credential or an id
	// that no recorded response issued (a hard-coded API key, a token from
	// a login outside the recording): a replay sends them as recorded.
	Unreplaced []UnreplacedValue `json:"unreplaced,omitempty"`
	// Exchanges is how many exchanges the plan was computed from.
	Exchanges uint64 `json:"exchanges"`
	// Forgotten counts issued values the plan's memory bound let go of
	// before the recording ended (sessions idle too long or too many at
	// once); a value carried after that was counted as unreplaced.
	Forgotten uint64 `json:"forgotten,omitempty"`
	// All is set when the plan gave up telling places apart (too many
	// rules): a replay then learns every distinctive value, as without a
	// plan.
	All bool `json:"all,omitempty"`
}

// CorrelationRule is one place of a route's responses whose values later
// requests carry: Field is "json:" and a JSON path with array indices as
// [*] ("json:.items[*].id"), "form:" and a name, "cookie:" and a cookie
// name, or "header:" and a header name, as corrplan.Fields names them.
type CorrelationRule struct {
	Route string `json:"route"`
	Field string `json:"field"`
}

// UnreplacedValue counts the requests of a route that carried a value at
// Place ("header:Authorization", "cookie:sid", "query:api_key",
// "json:.token", "form:csrf") that no recorded response issued. Example
// shows the start of one such value and its length, never the whole.
type UnreplacedValue struct {
	Route    string `json:"route"`
	Place    string `json:"place"`
	Requests uint64 `json:"requests"`
	Example  string `json:"example"`
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
