package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
)

// A replay too big for one machine runs as N shards, one process each
// (issue 18): every shard reads the whole recording and keeps the same
// schedule, but sends only the sessions whose key hashes to it, so the N
// shards together send every session clone exactly once, each at the due
// time the single-process replay gives it. They share one clock through
// WithStartAt, divide the whole run's caps, and each writes a report that
// MergeReports joins into one.

// MaxShards bounds N in K/N: more shards than this would leave most of
// them idle on any recording this tool is used with.
const MaxShards = 10000

// StartLateTolerance is how late a shard may start after its start
// instant before its summary calls it late: a timer's wake-up and a busy
// machine's scheduling take a few milliseconds.
const StartLateTolerance = 100 * time.Millisecond

// ErrShard means a shard was written wrong; the message says how to write it.
var ErrShard = errors.New("bad shard")

// Shard is part K (from 0) of N of a replay, as Kubernetes numbers an
// Indexed Job's pods (JOB_COMPLETION_INDEX). The zero Shard, like 0/1, is
// the whole replay.
type Shard struct{ K, N int }

// ParseShard reads "K/N", K counted from 0 like JOB_COMPLETION_INDEX.
func ParseShard(s string) (Shard, error) {
	ks, ns, ok := strings.Cut(strings.TrimSpace(s), "/")
	k, kerr := strconv.Atoi(strings.TrimSpace(ks))
	n, nerr := strconv.Atoi(strings.TrimSpace(ns))
	if !ok || kerr != nil || nerr != nil {
		return Shard{}, fmt.Errorf("%w %q: write K/N, e.g. 0/4 for the first of four shards", ErrShard, s)
	}
	sh := Shard{K: k, N: n}
	return sh, sh.check()
}

func (s Shard) check() error {
	switch {
	case s.N < 1 || s.N > MaxShards:
		return fmt.Errorf("%w %d/%d: N must be 1 to %d", ErrShard, s.K, s.N, MaxShards)
	case s.K < 0 || s.K >= s.N:
		return fmt.Errorf("%w %d/%d: K counts from 0 to N-1 (as JOB_COMPLETION_INDEX does): use 0/%d to %d/%d", ErrShard, s.K, s.N, s.N, s.N-1, s.N)
	}
	return nil
}

// String writes the shard as K/N.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.K, max(s.N, 1)) }

// Split reports whether the shard is a part of a larger replay (N > 1).
func (s Shard) Split() bool { return s.N > 1 }

// Owns reports whether the session clone keyed key is this shard's: its
// key's 64-bit FNV-1a hash modulo N is K. The hash is fixed (it is not
// Go's map hash, which changes per process), so every shard of a run,
// on any machine, agrees on every key.
func (s Shard) Owns(key string) bool {
	if s.N <= 1 {
		return true
	}
	h := fnv.New64a()
	io.WriteString(h, key)
	return h.Sum64()%uint64(s.N) == uint64(s.K)
}

// cloneKey is the one place a session clone's key is made: "S" for a
// replay at scale 1, "S#k" for clone k otherwise. The shard filter hashes
// exactly this key.
func cloneKey(base string, k, scale int) string {
	if scale <= 1 {
		return base
	}
	return base + "#" + strconv.Itoa(k)
}

// WithShard makes the Replayer part k of n: it sends only the session
// clones it owns (Shard.Owns) and divides the whole run's caps by n: the
// rate cap (WithRate) exactly, the session cap (WithMaxSessions) rounded
// up. Speed and scale ramps are not divided: they set each session's due
// time, which is the same in every shard. The report's Shard says so.
func WithShard(k, n int) Option {
	return func(o *options) error {
		s := Shard{K: k, N: n}
		if err := s.check(); err != nil {
			return err
		}
		o.shard = s
		return nil
	}
}

// ShardReport says which part of a replay a report covers and how the
// whole run's caps were divided.
type ShardReport struct {
	K    int    `json:"k"`
	N    int    `json:"n"`
	Hash string `json:"hash"` // how keys are assigned: "fnv1a64(session key) mod n"
	// WholeRatePerSecond and WholeMaxSessions are the caps given for the
	// whole run; the report's Limits hold this shard's share.
	WholeRatePerSecond float64 `json:"whole_rate_per_s,omitempty"`
	WholeMaxSessions   int     `json:"whole_max_sessions,omitempty"`
}

// shardHash names the assignment in reports, so that reports of shards
// that split sessions differently are never merged.
const shardHash = "fnv1a64(session key) mod n"

// startShard runs once the run is prepared, before its clock starts (see
// startClock): it installs the shard's share of the caps, then waits for
// the start instant (WithStartAt). A Stop during the wait starts the run
// at once, which then stops in order; ctx ending is an error and no
// report.
func (r *Replayer) startShard(ctx context.Context) error {
	o := &r.o
	if sh := o.shard; sh.Split() {
		rep := &ShardReport{K: sh.K, N: sh.N, Hash: shardHash, WholeRatePerSecond: o.ratePerSecond, WholeMaxSessions: o.maxSessions}
		if o.ratePerSecond > 0 {
			o.ratePerSecond /= float64(sh.N)
			o.limiter = ramp.NewThrottle(ramp.Rate{PerSecond: o.ratePerSecond})
		}
		if o.maxSessions > 0 {
			o.maxSessions = (o.maxSessions + sh.N - 1) / sh.N
			r.sessSem = ramp.NewSemaphore(o.maxSessions)
		}
		r.st.shard = rep
	}
	r.st.recording = o.recording
	if o.startAt.IsZero() {
		return nil
	}
	if wait := time.Until(o.startAt); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.stopCh:
		case <-ctx.Done():
			return fmt.Errorf("waiting to start at %s: %w", o.startAt.UTC().Format(time.RFC3339Nano), context.Cause(ctx))
		}
	}
	at := o.startAt.UTC()
	r.st.startAt = &at
	r.st.startLate = max(time.Since(o.startAt), 0)
	return nil
}

// ParseStartAt reads --start-at: an RFC 3339 instant, or "+30s" for that
// long after now.
func ParseStartAt(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("start at %q: write +DURATION, e.g. +30s, or an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("start at %q: write an RFC 3339 time such as 2026-01-02T15:04:05Z, or +30s", s)
	}
	return t, nil
}

// RecordingID names the recording a report was made from, so that only
// reports of one recording are merged.
type RecordingID struct {
	Paths []string `json:"paths"`
	// SHA256 is the hex digest of the files' bytes, in order.
	SHA256 string `json:"sha256"`
	// Format is the recording format's major version (session.FormatMajor).
	Format int `json:"format"`
}

// IdentifyRecording hashes the recording's files, in order.
func IdentifyRecording(paths ...string) (*RecordingID, error) {
	h := sha256.New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("hash %s: %w", p, err)
		}
	}
	return &RecordingID{Paths: paths, SHA256: hex.EncodeToString(h.Sum(nil)), Format: session.FormatMajor}, nil
}

// WithRecording puts the recording's identity in the report
// (IdentifyRecording), which MergeReports checks.
func WithRecording(id *RecordingID) Option {
	return func(o *options) error {
		o.recording = id
		return nil
	}
}

// shardSummary writes the shard's and the start instant's lines of
// WriteSummary.
func (r *Report) shardSummary(b *strings.Builder) {
	if s := r.Shard; s != nil {
		fmt.Fprintf(b, "  shard     %d/%d: the sessions whose key hashes to it (%s)", s.K, s.N, s.Hash)
		var caps []string
		if s.WholeRatePerSecond > 0 {
			caps = append(caps, fmt.Sprintf("--rate %g/s is %g/s here", s.WholeRatePerSecond, r.Limits.RatePerSecond))
		}
		if s.WholeMaxSessions > 0 {
			caps = append(caps, fmt.Sprintf("--max-sessions %d is %d here", s.WholeMaxSessions, r.Limits.MaxSessions))
		}
		if len(caps) > 0 {
			fmt.Fprintf(b, "; the whole run's caps divided by %d: %s", s.N, strings.Join(caps, ", "))
		}
		b.WriteString("; ramps apply as given\n")
	}
	if len(r.Shards) > 0 {
		late := 0
		for _, s := range r.Shards {
			if s.StartLateMS > msf(StartLateTolerance) {
				late++
			}
		}
		fmt.Fprintf(b, "  merged    %d shards", len(r.Shards))
		if late > 0 {
			fmt.Fprintf(b, ", %d of them started LATE", late)
		}
		b.WriteString("\n")
	}
	if r.StartAt != nil {
		if late := r.StartLateMS; late > msf(StartLateTolerance) {
			fmt.Fprintf(b, "  start     LATE by %s after the start instant %s\n", FormatMS(late), r.StartAt.Format(time.RFC3339Nano))
		} else {
			fmt.Fprintf(b, "  start     at %s (%s after it)\n", r.StartAt.Format(time.RFC3339Nano), FormatMS(late))
		}
	}
}
