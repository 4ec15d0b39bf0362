package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/mtbert/mtbert/kernels/cuda/cudatest"
)

// jsonDiff returns where two JSON values differ: a different structure, string or boolean, or a
// number more than tol apart; "" when they agree.
func jsonDiff(a, b any, tol float64, path string) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return path + ": different objects"
		}
		for k, v := range x {
			if d := jsonDiff(v, y[k], tol, path+"."+k); d != "" {
				return d
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return path + ": different arrays"
		}
		for i := range x {
			if d := jsonDiff(x[i], y[i], tol, fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
	case float64:
		y, ok := b.(float64)
		if !ok || math.Abs(x-y) > tol {
			return fmt.Sprintf("%s: %v vs %v", path, a, b)
		}
	default:
		if a != b {
			return fmt.Sprintf("%s: %v vs %v", path, a, b)
		}
	}
	return ""
}

// TestPredictAndEvalOnTheGPUPath: mtbert predict and eval with -device cuda (the encoder on the
// GPU path, the heads on the CPU) give the CPU's entities and labels with scores within 1e-3,
// and its metrics within 5e-3, on the host emulation.
func TestPredictAndEvalOnTheGPUPath(t *testing.T) {
	cudatest.Use(t)
	dir := t.TempDir()
	runCmd(t, 0, "train", "-config", trainCfg, "-out", filepath.Join(dir, "run"), "-quiet")
	model := filepath.Join(dir, "run", "best")
	in := bulkInput(t, dir)
	cpu, _ := runCmd(t, 0, "predict", "-model", model, "-in", in, "-device", "cpu")
	gpu, _ := runCmd(t, 0, "predict", "-model", model, "-in", in, "-device", "cuda")
	cl, gl := outLines(cpu), outLines(gpu)
	if len(cl) != 40 || len(gl) != 40 {
		t.Fatalf("%d and %d output lines", len(cl), len(gl))
	}
	entities := 0
	for i := range cl {
		var a, b map[string]any
		if err := json.Unmarshal([]byte(cl[i]), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(gl[i]), &b); err != nil {
			t.Fatal(err)
		}
		if d := jsonDiff(a, b, 1e-3, fmt.Sprintf("line %d", i+1)); d != "" {
			t.Fatalf("predict -device cuda differs from the CPU: %s", d)
		}
		if ents, ok := a["entities"].(map[string]any); ok {
			for _, v := range ents {
				if l, ok := v.([]any); ok {
					entities += len(l)
				}
			}
		}
	}
	if entities == 0 {
		t.Fatal("no entity predicted: the comparison checks nothing")
	}
	var ec, eg any
	c, _ := runCmd(t, 0, "eval", "-model", model, "-config", trainCfg, "-json", "-device", "cpu")
	g, _ := runCmd(t, 0, "eval", "-model", model, "-config", trainCfg, "-json", "-device", "cuda")
	if err := json.Unmarshal([]byte(c), &ec); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(g), &eg); err != nil {
		t.Fatal(err)
	}
	// Metrics: the same entities and labels; the Pearson of the regression head's scores moves
	// by about 1e-3 (its attention inputs are rounded to bf16).
	if d := jsonDiff(ec, eg, 5e-3, "eval"); d != "" {
		t.Errorf("eval -device cuda differs from the CPU: %s", d)
	}
	t.Logf("40 notes, %d entities: the GPU path agrees with the CPU", entities)
}
