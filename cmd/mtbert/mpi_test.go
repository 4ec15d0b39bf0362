package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMPIDataParallelMatchesOneProcess trains the fixture for K = 30 steps (10 rounds of
// its three tasks, batch 8; the regression task's last batch of a pass is short, so one rank
// of two gets 3 rows and the other 4, and with a batch of 1 one rank none) on one process
// and on 2 ranks under mpirun, with dropout off and on, and compares every weight.
//
// The bound: the 2-rank gradient is the 1-process one with its sum over the batch split in
// two float32 partial sums added by MPI_Allreduce; every other operation is the same, the
// dropout masks included (keyed by the row in the whole batch). A sum of n float32 terms
// reordered changes by at most about n·u·Σ|terms| (u = 2⁻²⁴ ≈ 6e-8), a relative 1e-6 for
// these batches of 8 to 96 targets; Adam divides each gradient by its running RMS, so the
// update changes by about lr·1e-6 a step, and K steps add up to K·lr·1e-6 = 30·3e-3·1e-6 ≈
// 1e-7 (measured: 1.2e-7 without dropout, 2.1e-7 with). The test allows 2e-6, ten times
// the measure and a thousandth of one step's update (lr = 3e-3): a wrong share, weight or
// dropout mask moves weights by a whole update.
//
// The attention's key biases are left out of that bound: their gradient is zero in exact
// arithmetic (a bias added to every key shifts each query's scores by a constant, which the
// softmax cancels), so what they receive is rounding noise, which Adam's m/√v scales up to
// steps of up to lr. They are only checked to stay within K·lr of each other.
func TestMPIDataParallelMatchesOneProcess(t *testing.T) {
	mpirun := needMPI(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	for _, drop := range []string{"0", "0.1"} {
		cfg, root := fixtureConfig(t, dir, "drop"+drop+".yaml", map[string]string{"dropout": drop, "steps": "30"})
		one, two := filepath.Join(dir, "one-"+drop), filepath.Join(dir, "two-"+drop)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if out, err := mpiCmd(ctx, mpirun, 1, bin, "train", "-config", cfg, "-data-root", root, "-out", one, "-quiet", "-distributed", "none").CombinedOutput(); err != nil {
			t.Fatalf("dropout %s, 1 process: %v\n%s", drop, err, out)
		}
		out, err := mpiCmd(ctx, mpirun, 2, bin, "train", "-config", cfg, "-data-root", root, "-out", two, "-quiet").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("dropout %s, mpirun -np 2: %v\n%s", drop, err, out)
		}
		w1, w2 := weights(t, filepath.Join(one, "last")), weights(t, filepath.Join(two, "last"))
		keyBias := func(n string) bool { return strings.HasSuffix(n, "attention.self.key.bias") }
		d, where := maxDiff(t, w1, w2, keyBias)
		dk, _ := maxDiff(t, w1, w2, func(n string) bool { return !keyBias(n) })
		t.Logf("dropout %s: 30 steps, 1 process vs 2 ranks: max |Δw| = %.3g (at %s); key biases %.3g", drop, d, where, dk)
		if d > 2e-6 {
			t.Errorf("dropout %s: 2 ranks differ from 1 process by %.3g at %s, more than 2e-6", drop, d, where)
		}
		if dk > 30*3e-3 {
			t.Errorf("dropout %s: key biases differ by %.3g, more than K·lr", drop, dk)
		}
	}
}
