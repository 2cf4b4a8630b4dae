package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/reprise-tool/reprise/replay"
)

// The manifest decodes into a batchv1.Job (strictly: no field the type
// lacks) that is an Indexed Job of N pods, fails as a whole on a guard's
// exit code, fetches and checks the recording, and passes one start
// instant and the replay flags to every pod.
func TestK8sJobManifest(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "traffic.rpz")
	if err := os.WriteFile(rec, []byte("not really a recording"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "job.yaml")
	var stdout, stderr bytes.Buffer
	before := time.Now()
	code := run([]string{"k8s", "job", rec, "--shards", "4", "--target", "http://shop.staging:8080",
		"--recording-url", "https://files.example/traffic.rpz", "--image", "ghcr.io/x/reprise:v1",
		"--speed", "10", "--rate", "400/s", "--abort-on", "p99>2s", "--start-at", "+5m", "-o", out}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict(b, &job); err != nil {
		t.Fatalf("the manifest is not a batchv1.Job: %v\n%s", err, b)
	}
	s := job.Spec
	if job.APIVersion != "batch/v1" || job.Kind != "Job" {
		t.Errorf("apiVersion %q kind %q", job.APIVersion, job.Kind)
	}
	if *s.Completions != 4 || *s.Parallelism != 4 || *s.CompletionMode != batchv1.IndexedCompletion || *s.BackoffLimit != 0 {
		t.Errorf("completions %d parallelism %d mode %s backoffLimit %d", *s.Completions, *s.Parallelism, *s.CompletionMode, *s.BackoffLimit)
	}
	if p := s.PodFailurePolicy; p == nil || len(p.Rules) != 1 || p.Rules[0].Action != batchv1.PodFailurePolicyActionFailJob ||
		p.Rules[0].OnExitCodes == nil || p.Rules[0].OnExitCodes.Operator != batchv1.PodFailurePolicyOnExitCodesOpIn ||
		!slices.Equal(p.Rules[0].OnExitCodes.Values, []int32{exitGuard}) || *p.Rules[0].OnExitCodes.ContainerName != "reprise" {
		t.Errorf("podFailurePolicy %+v: want FailJob on the reprise container's exit code 3", p)
	}
	pod := s.Template.Spec
	if pod.RestartPolicy != "Never" || len(pod.Containers) != 1 || len(pod.InitContainers) != 1 {
		t.Fatalf("pod spec %+v", pod)
	}
	c := pod.Containers[0]
	if c.Image != "ghcr.io/x/reprise:v1" || c.Env[0].Name != envShards || c.Env[0].Value != "4" {
		t.Errorf("container image %s env %+v", c.Image, c.Env)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"replay /recording/traffic.rpz --target http://shop.staging:8080 --start-at ", "--report -",
		"--speed=10", "--rate=400/s", "--abort-on=p99>2s"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	at, err := time.Parse(time.RFC3339Nano, startArg(&job))
	if err != nil || at.Before(before.Add(5*time.Minute)) || at.After(time.Now().Add(5*time.Minute)) {
		t.Errorf("start at %v (%v), want five minutes after the manifest was made", at, err)
	}
	id, _ := replay.IdentifyRecording(rec)
	fetch := strings.Join(pod.InitContainers[0].Command, " ")
	if !strings.Contains(fetch, "https://files.example/traffic.rpz /recording/traffic.rpz "+id.SHA256) || !strings.Contains(fetch, "sha256sum -c") {
		t.Errorf("init container %q does not fetch and check the recording", fetch)
	}
	if c.Resources.Limits.Cpu().String() != "1" || c.Resources.Requests.Memory().String() != "512Mi" {
		t.Errorf("resources %+v", c.Resources)
	}
}

func TestK8sJobUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		// No way for the pods to get the recording.
		{"no recording", []string{"--shards", "2", "--target", "http://t"}, "--recording-url"},
		{"both ways", []string{"--shards", "2", "--target", "http://t", "--recording-url", "https://f", "--recording-volume", "pvc"}, "one of them"},
		{"no shards", []string{"--target", "http://t", "--recording-volume", "pvc"}, "--shards"},
		{"no target", []string{"--shards", "2", "--recording-volume", "pvc"}, "--target"},
		// A replay flag's value is checked here, not in the pods.
		{"bad replay flag", []string{"--shards", "2", "--target", "http://t", "--recording-volume", "pvc", "--rate", "fast"}, "rate"},
		{"bad sha256", []string{"--shards", "2", "--target", "http://t", "--recording-url", "https://f", "--sha256", "xyz"}, "--sha256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"k8s", "job", "x.rpz", "-o", filepath.Join(t.TempDir(), "j.yaml")}, tt.args...)
			if code := run(args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want %d naming %s", code, stderr.String(), exitUsage, tt.want)
			}
		})
	}
}
