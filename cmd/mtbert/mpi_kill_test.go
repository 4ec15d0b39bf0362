package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMPIRankKilledThenResumed kills rank 1 of a 2-rank run with SIGKILL in the middle of
// training (after rank 0 has saved OUT/last at an evaluation), checks that the job ends
// within 30 s with a message naming the failure instead of rank 0 waiting forever in
// MPI_Allreduce, that resuming on 1 process is refused, and that resuming on 2 ranks ends
// with weights bit-identical to an uninterrupted 2-rank run.
func TestMPIRankKilledThenResumed(t *testing.T) {
	mpirun := needMPI(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	cfg, root := fixtureConfig(t, dir, "kill.yaml", map[string]string{"steps": "1200", "eval_every": "100"})
	run := func(out string, extra ...string) *bytes.Buffer {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var b bytes.Buffer
		cmd := mpiCmd(ctx, mpirun, 2, append([]string{bin, "train", "-config", cfg, "-data-root", root, "-out", out, "-quiet"}, extra...)...)
		cmd.Stdout, cmd.Stderr = &b, &b
		if err := cmd.Run(); err != nil {
			t.Fatalf("mpirun -np 2 train %v: %v\n%s", extra, err, b.String())
		}
		return &b
	}
	ref := filepath.Join(dir, "ref")
	run(ref)

	out := filepath.Join(dir, "killed")
	marker := "MTBERT_TEST_RUN=" + out
	var log bytes.Buffer
	cmd := mpiCmd(context.Background(), mpirun, 2, bin, "train", "-config", cfg, "-data-root", root, "-out", out, "-quiet")
	cmd.Env = append(cmd.Env, marker)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for step 250 (OUT/last saved at 200), then kill rank 1.
	deadline := time.Now().Add(40 * time.Second)
	for lastStep(filepath.Join(out, "metrics.jsonl")) < 250 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no step 250 after 40 s:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	pid := rankPID(t, marker, 1)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the job succeeded with rank 1 killed:\n%s", log.String())
		}
		t.Logf("job ended %s after the kill (%v)", time.Since(killed).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the job still runs 30 s after rank 1 was killed:\n%s", log.String())
	}
	msg := log.String()
	if !strings.Contains(msg, "signal 9") && !strings.Contains(msg, "rank 0 of 2: terminated") {
		t.Errorf("no message says a rank died:\n%s", msg)
	}
	t.Logf("what the job said:\n%s", msg)

	// Resuming on 1 process is refused with the count to use.
	var one bytes.Buffer
	if code := run1(bin, &one, "train", "-config", cfg, "-data-root", root, "-out", out, "-quiet", "-resume", "-distributed", "none"); code == 0 ||
		!strings.Contains(one.String(), "trained on 2 rank(s), this run has 1") {
		t.Errorf("resume on 1 process: exit %d, %s", code, one.String())
	}

	run(out, "-resume")
	a, b := weights(t, filepath.Join(ref, "last")), weights(t, filepath.Join(out, "last"))
	if d, where := maxDiff(t, a, b, nil); d != 0 {
		t.Errorf("killed and resumed on 2 ranks: weights differ from the uninterrupted run by %g at %s", d, where)
	}
	if s := lastStep(filepath.Join(out, "metrics.jsonl")); s != 1200 {
		t.Errorf("resumed run's metrics end at step %d, want 1200", s)
	}
}

// run1 runs the binary once, returning its exit code.
func run1(bin string, out *bytes.Buffer, args ...string) int {
	cmd := newCmd(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// lastStep returns the step of the last complete training line of metrics.jsonl (0 when none).
func lastStep(path string) int {
	b, _ := os.ReadFile(path)
	step := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l struct {
			Step int      `json:"step"`
			Loss *float64 `json:"loss"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Loss != nil {
			step = l.Step
		}
	}
	return step
}

// rankPID finds the process of an MPI rank by its environment: the marker variable and
// OMPI_COMM_WORLD_RANK.
func rankPID(t *testing.T, marker string, rank int) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		has := func(v string) bool {
			for _, x := range vars {
				if x == v {
					return true
				}
			}
			return false
		}
		if has(marker) && has("OMPI_COMM_WORLD_RANK="+strconv.Itoa(rank)) {
			return pid
		}
	}
	t.Fatalf("no process of rank %d found", rank)
	return 0
}
