package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/reprise-tool/reprise/replay"
)

// envShards names the environment variable that gives the number of
// shards to a pod of an Indexed Job, whose index Kubernetes puts in
// JOB_COMPLETION_INDEX.
const (
	envShards = "REPRISE_SHARDS"
	envIndex  = "JOB_COMPLETION_INDEX"
)

// shardOptions turns --shard and --start-at (and, without --shard, the
// Indexed Job's environment) into the library's options. now is the
// moment "+30s" counts from: the command's start.
func (o *replayOptions) shardOptions(getenv func(string) string, now time.Time) ([]replay.Option, error) {
	var opts []replay.Option
	spec := o.shard
	if idx, total := getenv(envIndex), getenv(envShards); spec == "" && idx != "" && total != "" {
		spec = idx + "/" + total
	}
	if spec != "" {
		sh, err := replay.ParseShard(spec)
		if err != nil {
			if o.shard == "" {
				return nil, fmt.Errorf("%s=%s and %s=%s: %w", envIndex, strconv.Quote(getenv(envIndex)), envShards, strconv.Quote(getenv(envShards)), err)
			}
			return nil, fmt.Errorf("--shard: %w", err)
		}
		opts = append(opts, replay.WithShard(sh.K, sh.N))
	}
	if o.startAt != "" {
		at, err := replay.ParseStartAt(o.startAt, now)
		if err != nil {
			return nil, fmt.Errorf("--start-at: %w", err)
		}
		opts = append(opts, replay.WithStartAt(at))
	}
	return opts, nil
}

// The marker lines around a report written to stdout (--report -), so
// that 'reprise report merge' finds the shards' reports in their pods'
// logs whatever else the logs hold.
const (
	reportBegin = "----- BEGIN REPRISE REPORT -----"
	reportEnd   = "----- END REPRISE REPORT -----"
)

// writeReportOut writes --report: to a file, or with "-" to stdout
// between the marker lines.
func writeReportOut(path string, rep *replay.Report, stdout io.Writer) error {
	if path != "-" {
		return writeReport(path, rep)
	}
	var b bytes.Buffer
	b.WriteString(reportBegin + "\n")
	if err := rep.WriteJSON(&b); err != nil {
		return err
	}
	b.WriteString(reportEnd + "\n")
	_, err := stdout.Write(b.Bytes())
	return err
}

// maxMarkedReports bounds the reports read from one log file.
const maxMarkedReports = replay.MaxShards

// readReports reads the reports in data: one report's JSON, or any number
// between marker lines (the pods' logs, gathered by kubectl logs). name
// names the file in errors.
func readReports(name string, data []byte) (reps []*replay.Report, names []string, err error) {
	if !bytes.Contains(data, []byte(reportBegin)) {
		rep, err := replay.ReadReport(bytes.NewReader(data))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return []*replay.Report{rep}, []string{name}, nil
	}
	rest := data
	for {
		_, after, ok := bytes.Cut(rest, []byte(reportBegin))
		if !ok {
			break
		}
		body, tail, ok := bytes.Cut(after, []byte(reportEnd))
		if !ok {
			return nil, nil, fmt.Errorf("%s: report %d has no end marker: the log was cut short (was the pod still running?)", name, len(reps)+1)
		}
		if len(reps) >= maxMarkedReports {
			return nil, nil, fmt.Errorf("%s: more than %d reports", name, maxMarkedReports)
		}
		rep, err := replay.ReadReport(bytes.NewReader(body))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: report %d: %w", name, len(reps)+1, err)
		}
		reps = append(reps, rep)
		names = append(names, fmt.Sprintf("%s (report %d)", name, len(reps)))
		rest = tail
	}
	return reps, names, nil
}

// scaleOutText says, for the banner, which shard this is and when it
// starts, as the flags or the environment gave them.
func (o *replayOptions) scaleOutText() string {
	shard := o.shard
	if idx, total := os.Getenv(envIndex), os.Getenv(envShards); shard == "" && idx != "" && total != "" {
		shard = idx + "/" + total + " (from " + envIndex + " and " + envShards + ")"
	}
	if shard == "" {
		shard = "the whole run"
	} else {
		shard = "shard " + shard + " of the sessions"
	}
	if o.startAt == "" {
		return shard + ", starting at once"
	}
	return shard + ", starting at " + o.startAt + " after preparing"
}
