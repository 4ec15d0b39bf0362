package cudamtl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mtbert/mtbert/bert/cudabert"
	"github.com/mtbert/mtbert/kernels/cuda/cudatest"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/cudamtl"
	"github.com/mtbert/mtbert/mtl/train"
)

// stepLosses reads the training losses of metrics.jsonl by step.
func stepLosses(t *testing.T, out string) map[int]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	losses := map[int]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Step  int
			Split string
			Loss  *float64
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.Split == "" && l.Loss != nil {
			losses[l.Step] = *l.Loss
		}
	}
	return losses
}

// TestResumeOnGPU: a 12-step four-task run in mixed precision on the GPU path, interrupted
// after step 5 (-max-steps) and resumed, ends with checkpoint files (weights, heads, Adam
// moments and steps, trainer state) byte-identical to the uninterrupted run's. Checkpoints
// cross devices: the GPU run's step-5 checkpoint resumed on the CPU, and a CPU run's resumed
// on the GPU path (float32), follow the straight runs' losses within 5e-5.
func TestResumeOnGPU(t *testing.T) {
	c := cudatest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	edit := func(c *train.Config) { c.Training.Steps = 12 }
	run := func(out string, resume bool, maxSteps int, dev func(*train.Run) (mtl.DeviceStep, func(), error)) {
		t.Helper()
		if _, err := train.Train(ctx, fourTasks(t, edit), train.Options{Out: out, Resume: resume, MaxSteps: maxSteps, Device: dev}); err != nil {
			t.Fatal(err)
		}
	}
	mixed, f32 := cudamtl.Device(c, true), cudamtl.Device(c, false)
	straight, split := filepath.Join(dir, "straight"), filepath.Join(dir, "split")
	run(straight, false, 0, mixed)
	run(split, false, 5, mixed)
	run(split, true, 0, mixed)
	for _, f := range []string{"model.safetensors", "heads.safetensors", "trainer.safetensors", "trainer.json"} {
		a, _ := os.ReadFile(filepath.Join(straight, train.LastDir, f))
		b, _ := os.ReadFile(filepath.Join(split, train.LastDir, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the straight and the resumed GPU run", f)
		}
	}
	if a, b := stepLosses(t, straight), stepLosses(t, split); !reflect.DeepEqual(a, b) {
		t.Errorf("losses: straight %v, resumed %v", a, b)
	}

	// Across devices, in float32.
	cpu, gpu := filepath.Join(dir, "cpu"), filepath.Join(dir, "gpu")
	run(cpu, false, 0, nil)
	run(gpu, false, 0, f32)
	gpuThenCPU, cpuThenGPU := filepath.Join(dir, "gpu-cpu"), filepath.Join(dir, "cpu-gpu")
	run(gpuThenCPU, false, 5, f32)
	run(gpuThenCPU, true, 0, nil)
	run(cpuThenGPU, false, 5, nil)
	run(cpuThenGPU, true, 0, f32)
	for _, tc := range []struct{ name, want, got string }{{"GPU then CPU", cpu, gpuThenCPU}, {"CPU then GPU", gpu, cpuThenGPU}, {"GPU against CPU", cpu, gpu}} {
		want, got := stepLosses(t, tc.want), stepLosses(t, tc.got)
		worst := 0.0
		for s := 1; s <= 12; s++ {
			w, ok1 := want[s]
			g, ok2 := got[s]
			if !ok1 || !ok2 {
				t.Fatalf("%s: step %d missing", tc.name, s)
			}
			worst = max(worst, math.Abs(w-g))
		}
		t.Logf("%s: largest loss difference over 12 steps %.2g", tc.name, worst)
		if worst > 5e-5 {
			t.Errorf("%s: losses differ by up to %.3g", tc.name, worst)
		}
	}
}

// TestGPUCheckpointPredicts trains the three supervised tasks on the GPU path (mixed
// precision, no dropout) until the ner task tags its dev notes, then predicts with the saved
// checkpoint on the CPU and on the GPU path: the same entities.
func TestGPUCheckpointPredicts(t *testing.T) {
	c := cudatest.Open(t)
	r := fourTasks(t, func(c *train.Config) {
		c.Tasks = c.Tasks[:3]
		c.Training.Steps, c.Training.Dropout, c.Training.ClipNorm, c.Training.EvalEvery = 0, 0, 0, 0
		c.Training.Epochs, c.Training.Schedule, c.Training.WarmupSteps = 6, "", 0
	})
	out := filepath.Join(t.TempDir(), "run")
	if _, err := train.Train(context.Background(), r, train.Options{Out: out, Device: cudamtl.Device(c, true)}); err != nil {
		t.Fatal(err)
	}
	m, tok, err := mtl.LoadCheckpoint(filepath.Join(out, train.LastDir), false)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"patient took insulin daily .", "the patient took aspirin for fever .", "nausea and chest pain after heparin ."}
	ex := mtl.NewExtractor(m, tok)
	onCPU, err := ex.ExtractMany(context.Background(), texts, []string{"ner"})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := cudabert.New(c, m.Encoder)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if err := enc.UseBF16(); err != nil {
		t.Fatal(err)
	}
	ex.UseEncoder(enc)
	onGPU, err := ex.ExtractMany(context.Background(), texts, []string{"ner"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range texts {
		a, b := onCPU[i].Entities["ner"], onGPU[i].Entities["ner"]
		n += len(a)
		if len(a) != len(b) {
			t.Fatalf("%q: %d entities on the CPU, %d on the GPU path", texts[i], len(a), len(b))
		}
		for j := range a {
			if a[j].Type != b[j].Type || a[j].Start != b[j].Start || a[j].End != b[j].End || math.Abs(a[j].Score-b[j].Score) > 0.02 {
				t.Errorf("%q: entity %d: %+v on the CPU, %+v on the GPU path", texts[i], j, a[j], b[j])
			}
		}
	}
	if n == 0 {
		t.Error("the GPU-trained checkpoint finds no entity: the comparison shows nothing")
	}
	t.Logf("%d entities, the same on both", n)
}
