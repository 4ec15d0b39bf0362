package train

import (
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
)

// EvaluateTasks scores every loaded task that has the split (the others are skipped) with
// m, in task order. Every task must have a head in m.
func EvaluateTasks(m *mtl.Model, tok *bert.Tokenizer, loaded []*LoadedTask, split string) ([]mtl.TaskMetrics, error) {
	var out []mtl.TaskMetrics
	for _, lt := range loaded {
		tm, err := EvaluateTask(m, tok, lt, split)
		if err != nil {
			return nil, err
		}
		if tm != nil {
			out = append(out, *tm)
		}
	}
	return out, nil
}

// EvaluateTask scores one loaded task on split with Evaluate; nil (and no error) when the
// task has no such split.
func EvaluateTask(m *mtl.Model, tok *bert.Tokenizer, lt *LoadedTask, split string) (*mtl.TaskMetrics, error) {
	sd := lt.Split(split)
	if sd == nil {
		return nil, nil
	}
	t := lt.Task
	set := mtl.EvalSet{Task: t.Name, Split: split, Kind: t.Kind, Docs: sd.Docs, Pairs: sd.Pairs, BatchSize: t.BatchSize, WholeWordMasking: t.WholeWordMasking}
	if t.Kind.ReadsSpans() {
		opts, err := t.AlignOptions()
		if err != nil {
			return nil, err
		}
		set.Align = opts
	}
	return mtl.Evaluate(m, tok, set)
}
