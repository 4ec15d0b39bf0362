package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
)

// Regression tests for checkpoints someone else made (issue 14, items 2 and 3).

// TestLoadTrainerStateValidates edits each position of a saved trainer.json out of range and
// checks that LoadTrainerState refuses it with an error naming the field, where it used to
// be accepted and panic later (slice bounds out of range in the trainer).
// trainerFile mirrors trainer.json (mtl's trainerFile) for editing it.
type trainerFile struct {
	State mtl.TrainState `json:"state"`
	Seed  uint64         `json:"seed"`
	Steps map[string]int `json:"adam_steps"`
}

func TestLoadTrainerStateValidates(t *testing.T) {
	out := t.TempDir()
	if _, err := Train(context.Background(), prepareFixture(t, nil), Options{Out: out, MaxSteps: 2}); err != nil {
		t.Fatal(err)
	}
	last := filepath.Join(out, LastDir)
	raw, err := os.ReadFile(filepath.Join(last, mtl.TrainerStateFile))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		edit func(f *trainerFile)
		want string
	}{
		{func(f *trainerFile) { f.State.Step = -1 }, "state.step = -1"},
		{func(f *trainerFile) { f.State.Epoch = -3 }, "state.epoch = -3"},
		{func(f *trainerFile) { f.State.Round = -1 }, "state.round = -1"},
		{func(f *trainerFile) { f.State.Round = 1 << 40 }, "state.round = 1099511627776"},
		{func(f *trainerFile) { f.State.Next = -1 }, "state.next = -1"},
		{func(f *trainerFile) { f.State.Next = 3 }, "state.next = 3"},
		{func(f *trainerFile) { f.State.Passes[1] = -2 }, "state.passes[1] = -2"},
		{func(f *trainerFile) { f.State.Pos[0] = -5 }, "state.pos[0] = -5"},
		{func(f *trainerFile) { f.State.Pos[2] = 1 << 30 }, "state.pos[2] = 1073741824"},
		{func(f *trainerFile) { f.State.Pos = f.State.Pos[:1] }, "state.pos 1, the run has 3 tasks"},
		{func(f *trainerFile) {
			for k := range f.Steps {
				f.Steps[k] = -1
			}
		}, "must not be negative"},
	}
	for i, tc := range tests {
		var f trainerFile
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		tc.edit(&f)
		b, _ := json.Marshal(f)
		if err := os.WriteFile(filepath.Join(last, mtl.TrainerStateFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		r := prepareFixture(t, nil)
		err := mtl.LoadTrainerState(last, r.Trainer)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), mtl.TrainerStateFile) {
			t.Errorf("edit %d: error %v, want one naming %s and %q", i, err, mtl.TrainerStateFile, tc.want)
		}
	}
	// The untouched state loads.
	os.WriteFile(filepath.Join(last, mtl.TrainerStateFile), raw, 0o644)
	if err := mtl.LoadTrainerState(last, prepareFixture(t, nil).Trainer); err != nil {
		t.Errorf("original trainer.json: %v", err)
	}
}

// TestLoadCheckpointHugeTasks gives a checkpoint's tasks.json a task with 100,000 labels
// (checksums recomputed, as an attacker would): LoadCheckpoint refuses it against the model
// size limit, naming the file and the task, before building the heads.
func TestLoadCheckpointHugeTasks(t *testing.T) {
	r := prepareFixture(t, nil)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := mtl.SaveCheckpoint(dir, r.Model, r.Tokenizer, nil); err != nil {
		t.Fatal(err)
	}
	specs := r.Model.Specs()
	specs[0].Labels = nil
	for i := range 100000 {
		specs[0].Labels = append(specs[0].Labels, fmt.Sprint("B-", i))
	}
	if err := mtl.WriteJSON(filepath.Join(dir, mtl.TasksFile), specs); err != nil {
		t.Fatal(err)
	}
	if err := mtl.WriteChecksums(dir); err != nil {
		t.Fatal(err)
	}
	defer func(v int64) { bert.MaxModelBytes = v }(bert.MaxModelBytes)
	bert.MaxModelBytes = 4 << 20
	_, _, err := mtl.LoadCheckpoint(dir, false)
	if err == nil || !strings.Contains(err.Error(), `tasks.json: task "ner" has 100000 labels`) || !strings.Contains(err.Error(), "-max-model-bytes") {
		t.Fatalf("LoadCheckpoint: %v", err)
	}
}
