package main

import (
	"fmt"
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
