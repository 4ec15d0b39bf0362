// Package mtl is the multitask model of mtbert (MT-Clinical BERT, Mulyar & McInnes 2020):
// one shared BERT encoder with one light head per task, and everything that runs it.
//
//   - Heads and tasks: Kind (ner, pair-classification, classification, regression, mlm),
//     TaskSpec (what a checkpoint records of a task: labels, scheme, window length and
//     stride), Head, Model (the encoder and its heads; Loss for training, Predict for
//     inference; UseEncoder puts the encoder pass on another bert.Encoder, a GPU one).
//   - Alignment: Labels, Align (spans to word tags to sub-word labels, overlaps resolved and
//     counted), windows of long documents (AlignedDoc.MakeWindows) and MergeWindows.
//   - Inference, one path for all: PlanNote and PlanPair make Sequences, Extractor.Run pads
//     and batches them (PadLength) through the encoder and the heads, NotePlan.Decode and
//     PairPlan.Decode give entities (character and byte offsets, scores) and pair labels.
//     Extract, ExtractMany and Pair, the server (mtl/serve), bulk prediction and evaluation
//     all take it, so what Evaluate scores is what predict and serve return.
//   - Evaluation: Evaluate scores a task's split (strict span F1 and the reference's token
//     F1, accuracy and macro-F1, Pearson and Spearman, masked-token accuracy) with the
//     metrics of mtl/score.
//   - Training: Trainer (the round-robin schedule of Algorithm 1: one batch per task per
//     round, the shared encoder and that task's head updated), Collate, PackText for masked
//     language modelling.
//   - Checkpoints: SaveCheckpoint and LoadCheckpoint (a Hugging Face BERT folder plus
//     heads.safetensors, tasks.json, trainer state and checksums, written atomically).
//
// # Head kinds
//
// A task's Kind (ner, pair-classification, classification, regression,
// mlm) is one entry of the table in kinds.go: what it reads, whether it
// outputs per sub-word or per sequence, whether it predicts at inference,
// its label rule, loss, pair decoding, evaluation, main metric and config
// defaults. Code asks the Kind (PerToken, Predicts, ReadsSpans, Scored,
// MainMetric, ...) instead of naming one, so a new kind is a constant and
// an entry in kinds.go, with a task for it in kinds_test.go.
//
// Around it: mtl/corpus reads and writes the data formats, mtl/score computes metrics,
// mtl/train runs a config's training, mtl/serve serves a model over HTTP, mtl/synth makes the
// demo corpus, mtl/bulk runs bulk prediction. A new head kind goes in kinds.go.
package mtl
