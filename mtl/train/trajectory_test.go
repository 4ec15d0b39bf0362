package train

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/nn"
)

// The trajectory test: 50 steps of a tiny multitask run (testdata/trajectory/config.yaml: ner,
// pair classification and regression batches in turn) against PyTorch replaying the same
// steps from mtbert's dump (testdata/trajectory/replay.py; gen.sh regenerates the goldens).
//
// Tolerances: every step's loss within trajLossTol relative; every parameter after the last
// step within trajWeightTol relative in the L2 norm over the tensor,
// ‖w_go − w_torch‖₂ / ‖w_torch‖₂. float32 on both sides with different summation orders
// agrees to below 1e-6 on this run (losses about 2e-7, weights at most 7e-7); the settings the
// test guards (the schedule's step, the weight-decay groups, clipping before the update) each
// move the losses by 2e-3 or more.
//
// One exception: an attention key bias has no gradient in exact arithmetic (it adds q·b to
// every score of a query's row, and the softmax ignores a constant), so both sides move it,
// from 0, by Adam's normalised rounding noise; after 50 steps it is 2e-6 to 1e-4 in L2 (more
// without clipping), and the two noises are unrelated. Those tensors are checked to stay at
// noise level, ‖w‖₂ ≤ trajNoiseNorm on both sides (the biases that learn are 0.06 to 0.13
// here), instead of against each other.
const (
	trajLossTol   = 1e-4
	trajWeightTol = 1e-4
	trajNoiseNorm = 1e-3
	trajDir       = "testdata/trajectory"
)

// gradientFree reports whether a parameter gets no gradient in exact arithmetic.
func gradientFree(name string) bool { return strings.HasSuffix(name, "attention.self.key.bias") }

// trajectory is a run's per-step losses and rates and its final weights by name.
type trajectory struct {
	loss, lr []float64
	weights  map[string][]float32
}

// runTrajectory trains the trajectory config's 50 steps with edit applied to the trainer first.
func runTrajectory(t *testing.T, edit func(*mtl.Trainer)) trajectory {
	t.Helper()
	cfg, err := LoadConfig(filepath.Join(trajDir, "config.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(r.Trainer)
	}
	var tj trajectory
	for s := 0; s < r.TotalSteps; s++ {
		info, err := r.Trainer.Step()
		if err != nil {
			t.Fatal(err)
		}
		tj.loss = append(tj.loss, info.Loss)
		tj.lr = append(tj.lr, info.LR)
	}
	tj.weights = map[string][]float32{}
	for _, p := range r.Model.AllParams() {
		tj.weights[p.Name] = append([]float32(nil), p.Value.Data()...)
	}
	return tj
}

// loadGolden reads testdata/trajectory/golden-<variant>.safetensors.
func loadGolden(t *testing.T, variant string) trajectory {
	t.Helper()
	f, err := nn.LoadSafetensors(filepath.Join(trajDir, "golden-"+variant+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) []float32 {
		st, ok := f.Tensors[name]
		if !ok {
			t.Fatalf("golden %s has no tensor %q", variant, name)
		}
		v, err := st.Float32()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	g := trajectory{weights: map[string][]float32{}}
	for _, v := range get("loss") {
		g.loss = append(g.loss, float64(v))
	}
	for _, v := range get("lr") {
		g.lr = append(g.lr, float64(v))
	}
	for _, n := range f.Names() {
		if len(n) > 2 && n[:2] == "w." {
			g.weights[n[2:]] = get(n)
		}
	}
	return g
}

// trajDiff is how far a run is from a golden: the worst step's relative loss difference and the
// worst tensor's relative L2 difference, with where they are.
type trajDiff struct {
	loss       float64
	lossStep   int
	weight     float64
	weightName string
}

func (d trajDiff) within() bool { return d.loss <= trajLossTol && d.weight <= trajWeightTol }

func (d trajDiff) String() string {
	return fmt.Sprintf("loss %.2e relative (step %d), weights %.2e relative L2 (%s)", d.loss, d.lossStep, d.weight, d.weightName)
}

func compareTrajectory(t *testing.T, got, want trajectory) trajDiff {
	t.Helper()
	if len(got.loss) != len(want.loss) {
		t.Fatalf("%d steps, golden has %d", len(got.loss), len(want.loss))
	}
	var d trajDiff
	for s := range got.loss {
		if r := math.Abs(got.loss[s]-want.loss[s]) / math.Abs(want.loss[s]); r > d.loss {
			d.loss, d.lossStep = r, s
		}
	}
	names := make([]string, 0, len(want.weights))
	for n := range want.weights {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g, ok := got.weights[n]
		w := want.weights[n]
		if !ok || len(g) != len(w) {
			t.Fatalf("parameter %s: mtbert has %d values, the golden %d", n, len(g), len(w))
		}
		var diff, norm, gnorm float64
		for i := range w {
			e := float64(g[i]) - float64(w[i])
			diff += e * e
			norm += float64(w[i]) * float64(w[i])
			gnorm += float64(g[i]) * float64(g[i])
		}
		if gradientFree(n) {
			if math.Sqrt(norm) > trajNoiseNorm || math.Sqrt(gnorm) > trajNoiseNorm {
				t.Errorf("%s gets no gradient, yet has L2 norm %.2e in mtbert and %.2e in the golden (want both <= %.0e)", n, math.Sqrt(gnorm), math.Sqrt(norm), trajNoiseNorm)
			}
			continue
		}
		if r := math.Sqrt(diff / norm); r > d.weight {
			d.weight, d.weightName = r, n
		}
	}
	if len(got.weights) != len(want.weights) {
		t.Fatalf("mtbert has %d parameters, the golden %d", len(got.weights), len(want.weights))
	}
	return d
}

// shifted is a schedule one step ahead of s.
type shifted struct{ s nn.Schedule }

func (h shifted) LR(step int) float64 { return h.s.LR(step + 1) }

// trajVariants are the goldens of the replay's variants (replay.py --variant) and, for each,
// the same mistake made on mtbert's side.
var trajVariants = []struct {
	name string
	edit func(*mtl.Trainer)
}{
	{"shift", func(tr *mtl.Trainer) { tr.Sched = shifted{tr.Sched} }},
	{"decay-all", func(tr *mtl.Trainer) { tr.Opt.NoDecay = nil }},
	// Clipping after the update clips gradients that are then zeroed: the same trajectory as
	// no clipping.
	{"clip-after", func(tr *mtl.Trainer) { tr.Clip = 0 }},
}

// TestTrajectoryMatchesPyTorch trains the 50 steps and checks them against PyTorch's replay:
// within tolerance of the correct golden, outside it of every golden with one setting wrong.
func TestTrajectoryMatchesPyTorch(t *testing.T) {
	got := runTrajectory(t, nil)
	want := loadGolden(t, "correct")
	for s := range got.lr {
		if math.Abs(got.lr[s]-want.lr[s]) > 1e-6*want.lr[s]+1e-12 {
			t.Errorf("step %d: rate %g, PyTorch's schedule %g", s, got.lr[s], want.lr[s])
		}
	}
	d := compareTrajectory(t, got, want)
	t.Logf("correct: %v", d)
	if !d.within() {
		t.Errorf("mtbert's 50 steps differ from PyTorch's: %v; tolerance %.0e (loss) and %.0e (weights)", d, trajLossTol, trajWeightTol)
	}
	for _, v := range trajVariants {
		d := compareTrajectory(t, got, loadGolden(t, v.name))
		t.Logf("against %s: %v", v.name, d)
		if d.within() {
			t.Errorf("mtbert's run is within tolerance of the %s golden too (%v): the test cannot tell that mistake", v.name, d)
		}
	}
}

// TestTrajectoryCatchesMistakes makes each mistake on mtbert's side: the run must fail against
// the correct golden and match the golden of the same mistake made in PyTorch (which also shows
// the variant goldens are the mistakes they are named for).
func TestTrajectoryCatchesMistakes(t *testing.T) {
	want := loadGolden(t, "correct")
	for _, v := range trajVariants {
		t.Run(v.name, func(t *testing.T) {
			got := runTrajectory(t, v.edit)
			if d := compareTrajectory(t, got, want); d.within() {
				t.Errorf("with %s, the run still matches the correct golden: %v", v.name, d)
			} else {
				t.Logf("against correct: %v", d)
			}
			if d := compareTrajectory(t, got, loadGolden(t, v.name)); !d.within() {
				t.Errorf("with %s, the run differs from PyTorch's %s golden: %v", v.name, v.name, d)
			}
		})
	}
}

// TestUpcomingIsWhatStepTrains checks the dump's source: Upcoming's batches are the ones Step
// trains on (the loss of each upcoming batch, computed before the step, is the step's loss),
// its rates are the ones Step uses, its dropout counters are where the modules stand, and it
// leaves the trainer's state alone. With dropout 0.1 (the counters advance at every site) the
// losses are not compared, since the step's masks change them.
func TestUpcomingIsWhatStepTrains(t *testing.T) {
	for _, p := range []float64{0, 0.1} {
		t.Run(fmt.Sprint("dropout ", p), func(t *testing.T) {
			r := prepareFixture(t, func(c *Config) {
				c.Training.Dropout = p
				c.Training.Schedule, c.Training.WarmupSteps = "linear", 3
			})
			tr := r.Trainer
			const k = 12
			feeds, err := tr.Upcoming(k)
			if err != nil {
				t.Fatal(err)
			}
			if tr.State.Step != 0 || tr.State.Next != 0 || tr.State.Pos[0] != 0 || tr.State.Passes[0] != 0 {
				t.Fatalf("Upcoming moved the trainer: %+v", tr.State)
			}
			for s, f := range feeds {
				tr.SyncState()
				for j, d := range f.Dropout {
					if d.Calls != tr.State.Dropout[j] {
						t.Fatalf("step %d, dropout module %d: Upcoming says %d draws so far, the module has %d", s, j, d.Calls, tr.State.Dropout[j])
					}
				}
				tp := autograd.NoGrad()
				want, err := r.Model.Loss(tp, tr.Tasks[f.Task].Head, &f.Batches[0], false)
				if err != nil {
					t.Fatal(err)
				}
				wantLoss := float64(want.Value.Item())
				tp.Reset()
				info, err := tr.Step()
				if err != nil {
					t.Fatal(err)
				}
				if info.Step != f.Step || info.Task != tr.Tasks[f.Task].Head.Spec.Name || info.LR != f.LR {
					t.Fatalf("step %d: Step trained task %s at rate %g, Upcoming said step %d, task %s, rate %g", s, info.Task, info.LR, f.Step, tr.Tasks[f.Task].Head.Spec.Name, f.LR)
				}
				if p == 0 && math.Abs(info.Loss-wantLoss) > 1e-6*math.Abs(wantLoss) {
					t.Fatalf("step %d (%s): Step's loss %g, the upcoming batch's %g: not the same batch", s, info.Task, info.Loss, wantLoss)
				}
			}
		})
	}
}
