package mtl

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// toyTasks builds three learnable synthetic tasks over a 30-token vocabulary (ids 0-4 are
// specials): NER tags every 7 that follows an 8 ... as an entity; pair classification says
// whether the two segments start with the same id; regression predicts the fraction of 9s.
func toyTasks(g *tensor.RNG, n int) (ner, pair, reg []Example) {
	for i := 0; i < n; i++ {
		t := 6 + g.IntN(6)
		ids := []int32{2}
		tags := []int32{IgnoreLabel}
		for j := 0; j < t; j++ {
			id := int32(5 + g.IntN(25))
			ids = append(ids, id)
			tag := int32(0)
			if id == 7 {
				tag = 1
			}
			tags = append(tags, tag)
		}
		ids, tags = append(ids, 3), append(tags, IgnoreLabel)
		ner = append(ner, Example{IDs: ids, Tags: tags})

		a, b := int32(5+g.IntN(4)), int32(5+g.IntN(4))
		pids := []int32{2, a, 10, 3, b, 11, 3}
		cls := int32(0)
		if a == b {
			cls = 1
		}
		pair = append(pair, Example{IDs: pids, TypeIDs: []int32{0, 0, 0, 0, 1, 1, 1}, Class: cls})

		rids := []int32{2}
		nines := 0
		for j := 0; j < 6; j++ {
			id := int32(8 + g.IntN(2))
			if id == 9 {
				nines++
			}
			rids = append(rids, id)
		}
		reg = append(reg, Example{IDs: append(rids, 3), Score: float32(nines) / 6})
	}
	return
}

func toyRun(t *testing.T) (*Trainer, *Model) {
	t.Helper()
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads = 30, 32, 2, 2
	cfg.IntermediateSize, cfg.MaxPositionEmbeddings = 64, 32
	enc, err := bert.New(cfg, 7, false)
	if err != nil {
		t.Fatal(err)
	}
	specs := []TaskSpec{
		{Name: "ner", Kind: NER, Labels: []string{"O", "U-X"}, Scheme: "BILOU", MaxLength: 32},
		{Name: "pair", Kind: PairClassification, Labels: []string{"different", "same"}, MaxLength: 32},
		{Name: "score", Kind: Regression, MaxLength: 32},
	}
	m, err := NewModel(enc, specs, 8, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	ner, pair, reg := toyTasks(tensor.NewRNG(9), 64)
	tasks := []*TaskData{
		{Head: m.Heads[0], Train: ner, BatchSize: 8},
		{Head: m.Heads[1], Train: pair[:48], BatchSize: 8},
		{Head: m.Heads[2], Train: reg[:40], BatchSize: 8},
	}
	opt := nn.NewAdam(m.AllParams(), 1e-3)
	tr, err := NewTrainer(m, tasks, opt, nn.Constant(1e-3), 11, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tr, m
}

// TestTrainerLossesFall trains the toy tasks for 12 epochs: each task's mean loss over the last
// epoch must be well under its first epoch's.
func TestTrainerLossesFall(t *testing.T) {
	tr, _ := toyRun(t)
	if tr.RoundsPerEpoch() != 8 {
		t.Fatalf("rounds per epoch %d, want 8 (the NER task's batches)", tr.RoundsPerEpoch())
	}
	sums := map[int]map[string]float64{}
	err := tr.RunEpochs(context.Background(), 12, func(s StepInfo) error {
		if sums[s.Epoch] == nil {
			sums[s.Epoch] = map[string]float64{}
		}
		sums[s.Epoch][s.Task] += s.Loss / 8
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr.State.Step != 12*8*3 {
		t.Fatalf("%d steps, want %d", tr.State.Step, 12*8*3)
	}
	for _, task := range []string{"ner", "pair", "score"} {
		first, last := sums[0][task], sums[11][task]
		t.Logf("%s: mean loss %.4f in epoch 1, %.4f in epoch 12", task, first, last)
		if !(last < 0.6*first) {
			t.Errorf("%s: loss %.4f -> %.4f did not fall", task, first, last)
		}
	}
}

// TestResumeIsExact trains 20 steps straight, and 9 steps then a checkpoint, a fresh model
// and trainer resumed from it, and 11 more steps: the weights must be bit-identical.
func TestResumeIsExact(t *testing.T) {
	straight, ms := toyRun(t)
	for range 20 {
		if _, err := straight.Step(); err != nil {
			t.Fatal(err)
		}
	}
	first, m1 := toyRun(t)
	for range 9 {
		if _, err := first.Step(); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := SaveCheckpoint(dir, m1, nil, first); err != nil {
		t.Fatal(err)
	}
	resumed, m2 := toyRun(t)
	if err := m2.LoadWeights(dir); err != nil {
		t.Fatal(err)
	}
	if err := LoadTrainerState(dir, resumed); err != nil {
		t.Fatal(err)
	}
	for range 11 {
		if _, err := resumed.Step(); err != nil {
			t.Fatal(err)
		}
	}
	a, b := ms.AllParams(), m2.AllParams()
	for i := range a {
		x, y := a[i].Value.Data(), b[i].Value.Data()
		for j := range x {
			if math.Float32bits(x[j]) != math.Float32bits(y[j]) {
				t.Fatalf("%s[%d]: %v straight, %v resumed", a[i].Name, j, x[j], y[j])
			}
		}
	}
}
