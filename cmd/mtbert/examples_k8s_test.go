package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// k8sJob is the part of a batch/v1 Job that the test reads.
type k8sJob struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    *int   `yaml:"completions"`
		Parallelism    *int   `yaml:"parallelism"`
		Template       struct {
			Spec struct {
				RestartPolicy string `yaml:"restartPolicy"`
				Containers    []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name string `yaml:"name"`
					PVC  *struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readK8s(t *testing.T, path string) (jobs []k8sJob, claims []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var node yaml.Node
		if err := dec.Decode(&node); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var j k8sJob
		if err := node.Decode(&j); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch j.Kind {
		case "Job":
			jobs = append(jobs, j)
		case "PersistentVolumeClaim":
			claims = append(claims, j.Metadata.Name)
		}
	}
	return jobs, claims
}

// flagValue returns the value after -name in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "-"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// TestKubernetesManifests checks what the binary reads from examples/kubernetes: the predict
// Job is Indexed, its completions equal the shard count (MTBERT_SHARDS or -shards), its
// args are a predict command that parses with -shard auto, an -out per index and -resume,
// and its volume is mounted where -model, -in and -out point; the merge Job merges the same
// count of parts of the same input from the same volume.
func TestKubernetesManifests(t *testing.T) {
	jobs, claims := readK8s(t, "../../examples/kubernetes/predict-job.yaml")
	merges, _ := readK8s(t, "../../examples/kubernetes/merge-job.yaml")
	if len(jobs) != 1 || len(merges) != 1 || len(claims) != 1 {
		t.Fatalf("%d predict Jobs, %d merge Jobs, %d volume claims; want one of each", len(jobs), len(merges), len(claims))
	}
	j := jobs[0]
	if j.Spec.CompletionMode != "Indexed" || j.Spec.Completions == nil {
		t.Fatalf("predict Job: completionMode %q, completions %v: want Indexed with completions", j.Spec.CompletionMode, j.Spec.Completions)
	}
	n := *j.Spec.Completions
	cs := j.Spec.Template.Spec.Containers
	if len(cs) != 1 || len(cs[0].Args) == 0 || cs[0].Args[0] != "predict" {
		t.Fatalf("predict Job: want one container running predict, got %+v", cs)
	}
	c := cs[0]
	shards := 0
	if v, ok := flagValue(c.Args, "shards"); ok {
		shards, _ = strconv.Atoi(v)
	}
	for _, e := range c.Env {
		if e.Name == "MTBERT_SHARDS" && shards == 0 {
			shards, _ = strconv.Atoi(e.Value)
		}
	}
	if shards != n {
		t.Errorf("predict Job: completions %d, shard count (-shards or MTBERT_SHARDS) %d: they must agree", n, shards)
	}
	if v, _ := flagValue(c.Args, "shard"); v != "auto" {
		t.Errorf("predict Job: -shard %q, want auto", v)
	}
	out, _ := flagValue(c.Args, "out")
	if !strings.Contains(out, "$(JOB_COMPLETION_INDEX)") {
		t.Errorf("predict Job: -out %q does not name the index: the pods would write one file", out)
	}
	if !strings.Contains(strings.Join(c.Args, " "), "-resume") {
		t.Errorf("predict Job: no -resume: a retried pod would start its part again")
	}
	// The args parse as predict's flags (with the index and count the Job gives pod 3).
	t.Setenv("JOB_COMPLETION_INDEX", "3")
	t.Setenv("MTBERT_SHARDS", fmt.Sprint(shards))
	args := append([]string{}, c.Args[1:]...)
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "$(JOB_COMPLETION_INDEX)", "3")
	}
	var stderr bytes.Buffer
	if err := runPredict(append(args, "-h"), io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("predict Job args %v do not parse: %v\n%s", c.Args, err, stderr.String())
	}
	mounted := func(job k8sJob, path string) bool {
		for _, m := range job.Spec.Template.Spec.Containers[0].VolumeMounts {
			for _, v := range job.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.PVC != nil && v.PVC.ClaimName == claims[0] && strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
					return true
				}
			}
		}
		return false
	}
	for _, f := range []string{"model", "in", "out"} {
		if v, _ := flagValue(c.Args, f); !mounted(j, v) {
			t.Errorf("predict Job: -%s %q is not on the shared volume claim %s", f, v, claims[0])
		}
	}
	m := merges[0]
	ma := m.Spec.Template.Spec.Containers[0].Args
	if len(ma) == 0 || ma[0] != "merge" {
		t.Fatalf("merge Job: args %v, want merge", ma)
	}
	in, _ := flagValue(c.Args, "in")
	if v, _ := flagValue(ma, "in"); v != in {
		t.Errorf("merge Job: -in %q, predict's %q", v, in)
	}
	if v, _ := flagValue(ma, "shards"); v != fmt.Sprint(n) {
		t.Errorf("merge Job: -shards %s, the predict Job has %d completions", v, n)
	}
	if v, _ := flagValue(ma, "parts"); strings.ReplaceAll(v, "%d", "$(JOB_COMPLETION_INDEX)") != out {
		t.Errorf("merge Job: -parts %q does not match predict's -out %q", v, out)
	}
	for _, f := range []string{"in", "out", "parts"} {
		if v, _ := flagValue(ma, f); !mounted(m, v) {
			t.Errorf("merge Job: -%s %q is not on the shared volume claim %s", f, v, claims[0])
		}
	}
}
