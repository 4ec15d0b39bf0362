package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtbert/mtbert/mtl/synth"
)

// slurmCluster is a one-node Slurm cluster started by a test: munged, slurmctld and slurmd
// in the foreground, on a generated slurm.conf (proctrack/linuxproc, task/none, no cgroups,
// free ports) in a temporary folder.
type slurmCluster struct {
	dir string
	env []string
}

// startSlurm starts the cluster, or skips the test saying what is missing.
func startSlurm(t *testing.T) *slurmCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the Slurm test starts a one-node cluster (about 30 s)")
	}
	if os.Geteuid() != 0 {
		t.Skip("the Slurm test starts slurmd, which runs jobs as their owner and so needs root: run the tests as root (CI does)")
	}
	for _, b := range []string{"munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not found: install Slurm and munge (Debian: apt-get install slurm-wlm munge) to run the Slurm test", b)
		}
	}
	// Short paths: the munge socket's path must fit a sockaddr_un.
	dir, err := os.MkdirTemp("", "slurm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"state", "spool", "munge"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	key := make([]byte, 1024)
	for i := range key {
		key[i] = byte(i*131 + 7) // any 1 KiB: the cluster lives only for this test
	}
	if err := os.WriteFile(filepath.Join(dir, "munge", "munge.key"), key, 0o400); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	sock := filepath.Join(dir, "munge", "sock")
	conf := fmt.Sprintf(`ClusterName=mtbtest
SlurmctldHost=%[1]s(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=%[3]d
SlurmdPort=%[4]d
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=%[5]s
StateSaveLocation=%[2]s/state
SlurmdSpoolDir=%[2]s/spool
SlurmctldPidFile=%[2]s/slurmctld.pid
SlurmdPidFile=%[2]s/slurmd.pid
SlurmctldLogFile=%[2]s/slurmctld.log
SlurmdLogFile=%[2]s/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=10
NodeName=%[1]s NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`, host, dir, freePort(t), freePort(t), sock)
	mustWrite(t, filepath.Join(dir, "slurm.conf"), conf)
	c := &slurmCluster{dir: dir, env: append(os.Environ(), "SLURM_CONF="+filepath.Join(dir, "slurm.conf"))}
	c.daemon(t, "munged", "-F", "-f", "--socket="+sock, "--key-file="+filepath.Join(dir, "munge", "munge.key"),
		"--log-file="+filepath.Join(dir, "munge", "log"), "--pid-file="+filepath.Join(dir, "munge", "pid"), "--seed-file="+filepath.Join(dir, "munge", "seed"))
	waitFor(t, 10*time.Second, "munged's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	c.daemon(t, "slurmctld", "-D", "-i")
	c.daemon(t, "slurmd", "-D")
	waitFor(t, 30*time.Second, "the node to be idle (sinfo)", func() bool {
		out, _ := c.cmd("sinfo", "-h", "-o", "%t").Output()
		return strings.TrimSpace(string(out)) == "idle"
	})
	return c
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// daemon starts a daemon in the foreground, stopped (by its pid) when the test ends.
func (c *slurmCluster) daemon(t *testing.T, name string, args ...string) {
	t.Helper()
	log, err := os.Create(filepath.Join(c.dir, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.cmd(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Skipf("%s does not start: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		log.Close()
	})
	time.Sleep(200 * time.Millisecond)
	select {
	case <-exited:
		b, _ := os.ReadFile(log.Name())
		t.Skipf("%s exited at once (a one-node cluster cannot start here): %s", name, b)
	default:
	}
}

func (c *slurmCluster) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = c.env
	return cmd
}

// idle waits until no job is queued or running.
func (c *slurmCluster) idle(t *testing.T, within time.Duration) {
	t.Helper()
	waitFor(t, within, "the queue to empty", func() bool {
		out, _ := c.cmd("squeue", "-h").Output()
		return strings.TrimSpace(string(out)) == ""
	})
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSlurmArrayPredict runs examples/slurm/predict.sbatch on a one-node Slurm cluster: a
// 4-task array over 300 synthetic notes and its merge job give the unsharded output byte
// for byte; then a run whose task 2 is cancelled (scancel) while running: the merge job
// names shard 2, the task re-submitted alone continues its part (-resume), and the merge is
// complete and the same.
func TestSlurmArrayPredict(t *testing.T) {
	c := startSlurm(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	runCmd(t, 0, "train", "-config", trainCfg, "-out", filepath.Join(dir, "run"), "-quiet")
	model := filepath.Join(dir, "run", "best")
	// 300 notes of 12 synthetic notes each (about 14 kB): long enough that a task of 75 of
	// them, one window a pass, runs for seconds on the fixture's tiny model, so that the
	// cancel below lands while it runs.
	const perNote = 12
	corp, err := synth.Generate(15, 300*perNote, 0)
	if err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for i := 0; i < 300; i++ {
		var text strings.Builder
		for _, d := range corp.Clinical[i*perNote : (i+1)*perNote] {
			text.WriteString(d.Text)
			text.WriteString("\n\n")
		}
		b, _ := json.Marshal(map[string]string{"id": corp.Clinical[i*perNote].ID, "text": text.String()})
		in.Write(append(b, '\n'))
	}
	input := filepath.Join(dir, "notes.jsonl")
	mustWrite(t, input, in.String())
	full := filepath.Join(dir, "full.jsonl")
	if out, err := exec.Command(bin, "predict", "-model", model, "-in", input, "-out", full).CombinedOutput(); err != nil {
		t.Fatalf("unsharded predict: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(full)

	submit := func(out string, env ...string) string {
		t.Helper()
		cmd := c.cmd("bash", "../../examples/slurm/predict.sbatch")
		cmd.Env = append(cmd.Env, append([]string{"MODEL=" + model, "INPUT=" + input, "OUT=" + out, "SHARDS=4", "MTBERT=" + bin}, env...)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("submitting: %v\n%s", err, b)
		}
		return string(b)
	}
	logs := func(out string) string {
		var b strings.Builder
		files, _ := filepath.Glob(filepath.Join(out, "logs", "*.log"))
		for _, f := range files {
			s, _ := os.ReadFile(f)
			fmt.Fprintf(&b, "== %s\n%s", filepath.Base(f), s)
		}
		return b.String()
	}

	out := filepath.Join(dir, "array")
	t.Log(submit(out))
	c.idle(t, 60*time.Second)
	if got, err := os.ReadFile(filepath.Join(out, "all.jsonl")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("merged output of the 4-task array differs from the unsharded run (%v, %d bytes against %d)\n%s", err, len(got), len(want), logs(out))
	}
	if l := logs(out); strings.Count(l, "from the Slurm job array") != 4 {
		t.Errorf("the 4 tasks' logs do not each say their shard came from the Slurm job array:\n%s", l)
	}

	// Task 2 cancelled while it runs (one note a batch, so that it runs long enough).
	out = filepath.Join(dir, "cancelled")
	msg := submit(out, "PREDICT_ARGS=-batch 1")
	var array, merge int
	fmt.Sscanf(msg, "array job %d (tasks 0-3), merge job %d", &array, &merge)
	task := fmt.Sprintf("%d_2", array)
	waitFor(t, 30*time.Second, "task 2 to run", func() bool {
		o, _ := c.cmd("squeue", "-h", "-j", task, "-o", "%t").Output()
		return strings.TrimSpace(string(o)) == "R"
	})
	// Into its notes: its temporary output has results (or 20 s have passed).
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		tmps, _ := filepath.Glob(filepath.Join(out, ".part-2.jsonl.tmp-*"))
		if len(tmps) > 0 {
			if fi, err := os.Stat(tmps[0]); err == nil && fi.Size() > 0 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b, err := c.cmd("scancel", task).CombinedOutput(); err != nil {
		t.Fatalf("scancel %s: %v %s", task, err, b)
	}
	c.idle(t, 60*time.Second)
	part, _ := os.ReadFile(filepath.Join(out, "part-2.jsonl"))
	done := bytes.Count(part, []byte("\n"))
	t.Logf("task 2 cancelled with %d results in its part", done)
	if done >= 75 {
		t.Fatalf("task 2 finished its %d notes before the cancel: the test did not cancel it while it ran", done)
	}
	mergeLog, _ := os.ReadFile(filepath.Join(out, "logs", fmt.Sprintf("merge-%d.log", merge)))
	if _, err := os.Stat(filepath.Join(out, "all.jsonl")); err == nil || !strings.Contains(string(mergeLog), "shard 2 of 4") {
		t.Fatalf("after the cancel, the merge job did not fail naming shard 2:\n%s", logs(out))
	}
	t.Log(submit(out, "ARRAY=2"))
	c.idle(t, 60*time.Second)
	if got, err := os.ReadFile(filepath.Join(out, "all.jsonl")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("merged output after re-running task 2 differs from the unsharded run (%v)\n%s", err, logs(out))
	}
}
