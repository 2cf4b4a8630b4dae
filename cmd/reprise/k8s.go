package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/reprise-tool/reprise/replay"
)

// koImage is the image reference 'ko resolve' replaces with the image it
// builds from this module's cmd/reprise (no Dockerfile needed).
const koImage = "ko://github.com/reprise-tool/reprise/cmd/reprise"

// recordingDir is where the pods find the recording.
const recordingDir = "/recording"

// jobOptions are the flags of 'reprise k8s job'.
type jobOptions struct {
	files        []string
	shards       int
	out          string
	name         string
	namespace    string
	image        string
	fetchImage   string
	recordingURL string
	sha256       string
	volume       string
	startAt      string
	cpu, memory  string
	// replayArgs are the replay flags given, as written, passed to
	// every pod; set while the command line is parsed.
	replayArgs []string
	target     string
	now        time.Time
}

// notPassed are replay flags the Job sets itself (or that make no sense
// in a pod), so they are not offered on 'k8s job'.
var notPassed = map[string]bool{"shard": true, "start-at": true, "report": true, "json": true,
	"html": true, "dry-run": true}

// addK8s registers 'reprise k8s job' on the root command.
func addK8s(root *cobra.Command) {
	k := &cobra.Command{
		Use:   "k8s",
		Short: "Run a replay on Kubernetes",
	}
	k.AddCommand(newCmdK8sJob(nil))
	root.AddCommand(k)
}

// newCmdK8sJob builds 'reprise k8s job'; runF, when not nil, replaces
// jobRun (for tests of the flags).
func newCmdK8sJob(runF func(*jobOptions, io.Writer) error) *cobra.Command {
	o := &jobOptions{}
	c := &cobra.Command{
		Use:   "job FILE... --shards N --target URL (--recording-url URL | --recording-volume CLAIM) [replay flags] -o job.yaml",
		Short: "Write an Indexed Job that replays a recording as N shards started at one instant",
		Long: `Write a Kubernetes Job (batch/v1) that runs 'reprise replay' as N shards, one
pod each: completionMode Indexed, completions = parallelism = N; each pod
replays the sessions of its shard (--shard from JOB_COMPLETION_INDEX and
REPRISE_SHARDS) and waits for one start instant, computed once here from
--start-at (default +2m: apply the manifest before then).

A guard that trips in any shard exits 3; the Job's podFailurePolicy fails the
whole Job on exit code 3 (backoffLimit 0), which stops every other shard.

The recording reaches the pods one of two ways: --recording-url, fetched by
an init container and checked against --sha256 (by default the sha256 of the
local FILE), or --recording-volume, a PersistentVolumeClaim holding FILE
(read only, at /recording).

Each pod prints its run report on stdout between marker lines; gather and
merge them with:

  kubectl logs -l job-name=NAME --tail=-1 --max-log-requests N > shards.log
  reprise report merge shards.log -o run.json --html run.html

The image is --image; the default is ko's reference to this tool, which
'ko resolve -f job.yaml | kubectl apply -f -' builds and fills in.

Replay flags (--speed, --scale, --rate, --ramp, --abort-on, ...) are passed to
every pod as written. --rate and --max-sessions are for the whole run: each
shard takes its share.`,
		Example: `  reprise k8s job traffic.rpz --shards 8 --target http://shop.staging:8080 \
    --recording-url https://files.example/traffic.rpz --speed 10 --rate 4000/s -o job.yaml
  ko resolve -f job.yaml | kubectl apply -f -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.files, o.now = args, time.Now()
			if runF != nil {
				return runF(o, c.OutOrStdout())
			}
			return jobRun(o, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.IntVar(&o.shards, "shards", 0, "number of shards, one pod each (required)")
	f.StringVarP(&o.out, "output", "o", "", "write the manifest to this file (required; - for stdout)")
	f.StringVar(&o.name, "name", "reprise-replay", "the Job's name")
	f.StringVar(&o.namespace, "namespace", "", "the Job's namespace (default: kubectl's)")
	f.StringVar(&o.image, "image", koImage, "the reprise image the pods run")
	f.StringVar(&o.fetchImage, "fetch-image", "busybox:1.37", "the init container's image when fetching --recording-url (needs wget and sha256sum)")
	f.StringVar(&o.recordingURL, "recording-url", "", "URL the pods fetch the recording (one FILE) from")
	f.StringVar(&o.sha256, "sha256", "", "the recording's sha256 for --recording-url (default: that of the local FILE)")
	f.StringVar(&o.volume, "recording-volume", "", "a PersistentVolumeClaim holding FILE, mounted read only at "+recordingDir)
	f.StringVar(&o.startAt, "start-at", "+2m", "when every shard starts: RFC 3339, or +DURATION from now (computed once, here)")
	f.StringVar(&o.cpu, "cpu", "1", "CPU each pod requests and is limited to")
	f.StringVar(&o.memory, "memory", "512Mi", "memory each pod requests and is limited to")
	// The replay's own flags, parsed by its own values (so a mistake is
	// a usage error here) and recorded as written for the pods.
	rc := &cobra.Command{}
	addReplay(rc)
	rc.Commands()[0].Flags().VisitAll(func(fl *pflag.Flag) {
		if notPassed[fl.Name] {
			return
		}
		nf := *fl
		nf.Value = &passedValue{Value: fl.Value, name: fl.Name, o: o}
		f.AddFlag(&nf)
	})
	return c
}

// passedValue records each replay flag as written, for the pods.
type passedValue struct {
	pflag.Value
	name string
	o    *jobOptions
}

func (v *passedValue) Set(s string) error {
	if err := v.Value.Set(s); err != nil {
		return err
	}
	if v.name == "target" {
		v.o.target = s
		return nil
	}
	v.o.replayArgs = append(v.o.replayArgs, "--"+v.name+"="+s)
	return nil
}

// dnsLabel is what a Job's name may be.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$`)

// jobRun checks the flags, builds the Job and writes it.
func jobRun(o *jobOptions, stdout, stderr io.Writer) error {
	job, err := o.build()
	if err != nil {
		return err
	}
	b, err := yaml.Marshal(job)
	if err != nil {
		return err
	}
	if o.out == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(o.out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "k8s: wrote %s: %d shards of %s start at %s; apply it before then:\n  ko resolve -f %s | kubectl apply -f -   (or kubectl apply -f %s with --image)\n",
		o.out, o.shards, o.target, startArg(job), o.out, o.out)
	fmt.Fprintf(stderr, "then gather and merge the shards' reports:\n  kubectl logs -l job-name=%s --tail=-1 --max-log-requests %d > shards.log\n  reprise report merge shards.log -o run.json --html run.html\n", o.name, o.shards)
	return nil
}

func startArg(job *batchv1.Job) string {
	args := job.Spec.Template.Spec.Containers[0].Args
	for i, a := range args {
		if a == "--start-at" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// check says which flag is missing or wrong.
func (o *jobOptions) check() error {
	switch {
	case o.shards < 1 || o.shards > replay.MaxShards:
		return usagef(fmt.Errorf("--shards %d: give the number of shards, 1 to %d", o.shards, replay.MaxShards))
	case o.target == "":
		return usagef(errors.New("no target: give --target http://HOST:PORT as the pods see it"))
	case o.out == "":
		return usagef(errors.New("no output: give -o job.yaml"))
	case !dnsLabel.MatchString(o.name):
		return usagef(fmt.Errorf("--name %q: a Job's name is lower-case letters, digits and '-', at most 52 characters", o.name))
	case (o.recordingURL == "") == (o.volume == ""):
		return usagef(errors.New("give the pods the recording: --recording-url URL (fetched and checked) or --recording-volume CLAIM (mounted), one of them"))
	case o.recordingURL != "" && len(o.files) != 1:
		return usagef(errors.New("--recording-url fetches one file: give one FILE"))
	}
	return nil
}

// build makes the Job.
func (o *jobOptions) build() (*batchv1.Job, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	at, err := replay.ParseStartAt(o.startAt, o.now)
	if err != nil {
		return nil, usagef(fmt.Errorf("--start-at: %w", err))
	}
	res := corev1.ResourceList{}
	for name, v := range map[corev1.ResourceName]string{corev1.ResourceCPU: o.cpu, corev1.ResourceMemory: o.memory} {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, usagef(fmt.Errorf("--%s %q: %w", name, v, err))
		}
		res[name] = q
	}
	files := make([]string, len(o.files))
	for i, f := range o.files {
		files[i] = path.Join(recordingDir, path.Clean("/"+f))
	}
	var initContainers []corev1.Container
	vol := corev1.Volume{Name: "recording"}
	if o.recordingURL != "" {
		sum := o.sha256
		if sum == "" {
			id, err := replay.IdentifyRecording(o.files[0])
			if err != nil {
				return nil, usagef(fmt.Errorf("--sha256 not given and the local file cannot be hashed: %w", err))
			}
			sum = id.SHA256
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
			return nil, usagef(fmt.Errorf("--sha256 %q: want 64 lower-case hex digits", sum))
		}
		files[0] = path.Join(recordingDir, path.Base(o.files[0]))
		vol.VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
		initContainers = []corev1.Container{{
			Name:  "fetch-recording",
			Image: o.fetchImage,
			// The URL and sum are arguments, never spliced into the script.
			Command: []string{"sh", "-c", `set -e; wget -q -O "$2" "$1"; echo "$3  $2" | sha256sum -c -`, "fetch",
				o.recordingURL, files[0], sum},
			VolumeMounts: []corev1.VolumeMount{{Name: "recording", MountPath: recordingDir}},
		}}
	} else {
		vol.VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: o.volume, ReadOnly: true}}
	}
	args := append([]string{"replay"}, files...)
	args = append(args, "--target", o.target, "--start-at", at.UTC().Format(time.RFC3339Nano), "--report", "-")
	args = append(args, o.replayArgs...)
	n := int32(o.shards)
	no, yes := false, true
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: o.name, Namespace: o.namespace, Labels: map[string]string{"app.kubernetes.io/name": "reprise"}},
		Spec: batchv1.JobSpec{
			Completions:    &n,
			Parallelism:    &n,
			CompletionMode: ptr(batchv1.IndexedCompletion),
			BackoffLimit:   ptr(int32(0)),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				// A tripped guard in any shard (exit 3) stops the whole run.
				Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr("reprise"),
					Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
					Values:        []int32{exitGuard},
				},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app.kubernetes.io/name": "reprise"}},
				Spec: corev1.PodSpec{
					RestartPolicy:  corev1.RestartPolicyNever,
					InitContainers: initContainers,
					Containers: []corev1.Container{{
						Name:  "reprise",
						Image: o.image,
						Args:  args,
						Env:   []corev1.EnvVar{{Name: envShards, Value: strconv.Itoa(o.shards)}},
						Resources: corev1.ResourceRequirements{
							Requests: res,
							Limits:   res,
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "recording", MountPath: recordingDir, ReadOnly: true}},
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             &yes,
							AllowPrivilegeEscalation: &no,
							ReadOnlyRootFilesystem:   &yes,
						},
					}},
					Volumes: []corev1.Volume{vol},
				},
			},
		},
	}
	return job, nil
}

func ptr[T any](v T) *T { return &v }
