package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mtbert/mtbert/nn"
)

// buildBinary builds the mtbert command (CGO_ENABLED=0, as released) into a temporary
// folder, for the tests that run it under mpirun or Slurm.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "mtbert")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// fixtureConfig writes a copy of the fixture's training config with the training section
// edited by the replacements (key: value lines of training:), and returns its path and the
// -data-root its relative paths need.
func fixtureConfig(t *testing.T, dir, name string, training map[string]string) (string, string) {
	t.Helper()
	raw, err := os.ReadFile(trainCfg)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	head, _, _ := strings.Cut(s, "\ntraining:\n")
	keys := []string{"epochs", "lr", "seed", "dropout"}
	vals := map[string]string{"epochs": "2", "lr": "3e-3", "seed": "3", "dropout": "0.1"}
	if _, ok := training["steps"]; ok {
		delete(vals, "epochs")
		keys = keys[1:]
	}
	for k, v := range training {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(head + "\ntraining:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %s\n", k, vals[k])
	}
	root, err := filepath.Abs(filepath.Dir(trainCfg))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	mustWrite(t, path, strings.Replace(b.String(), "vocab: vocab.txt", "vocab: "+filepath.Join(root, "vocab.txt"), 1))
	return path, root
}

// needMPI skips unless Open MPI's mpirun is on the PATH and a 2-rank job starts.
func needMPI(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the mpirun tests start MPI jobs (seconds each)")
	}
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("mpirun not found: install Open MPI (Debian: apt-get install openmpi-bin) to run the data-parallel tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := mpiCmd(ctx, mpirun, 2, "true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("mpirun -np 2 true fails (%v): %s", err, out)
	}
	return mpirun
}

// mpiCmd is mpirun -np n args..., allowed to run as root and to oversubscribe a small
// machine, with shared-memory transport that needs no ptrace rights (containers).
func mpiCmd(ctx context.Context, mpirun string, n int, args ...string) *exec.Cmd {
	a := append([]string{"--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "-np", fmt.Sprint(n)}, args...)
	cmd := exec.CommandContext(ctx, mpirun, a...)
	cmd.Env = append(os.Environ(), "OMPI_MCA_btl_vader_single_copy_mechanism=none", "OMPI_MCA_btl=self,vader", "OMPI_MCA_rmaps_base_oversubscribe=1")
	return cmd
}

// weights reads every float32 tensor of a checkpoint folder (encoder and heads).
func weights(t *testing.T, dir string) map[string][]float32 {
	t.Helper()
	w := map[string][]float32{}
	for _, f := range []string{"model.safetensors", "heads.safetensors"} {
		sf, err := nn.LoadSafetensors(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for name, st := range sf.Tensors {
			v, err := st.Float32()
			if err != nil {
				t.Fatal(err)
			}
			w[f+":"+name] = v
		}
	}
	return w
}

// maxDiff returns the largest |a−b| over every weight whose name skip does not match (nil:
// every weight), and where.
func maxDiff(t *testing.T, a, b map[string][]float32, skip func(string) bool) (float64, string) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d tensors against %d", len(a), len(b))
	}
	worst, where := 0.0, ""
	for name, x := range a {
		y, ok := b[name]
		if !ok || len(y) != len(x) {
			t.Fatalf("tensor %s missing or of another size", name)
		}
		if skip != nil && skip(name) {
			continue
		}
		for i := range x {
			if d := math.Abs(float64(x[i]) - float64(y[i])); d > worst || math.IsNaN(d) {
				worst, where = d, fmt.Sprintf("%s[%d]", name, i)
			}
		}
	}
	return worst, where
}

// newCmd is exec.Command(bin, args...).
func newCmd(bin string, args ...string) *exec.Cmd { return exec.Command(bin, args...) }
