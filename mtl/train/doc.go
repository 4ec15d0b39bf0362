// Package train is mtbert's training run, driven by one YAML config (Config, LoadConfig): the
// encoder to start from, the tasks with their data files, formats and splits (read with
// mtl/corpus, held out by hash where a split is missing), and the training settings. Prepare
// loads and aligns every task and builds the model, optimiser, schedule and mtl.Trainer
// (the round-robin schedule); Train runs it with progress, dev evaluation, best and last
// checkpoints, metrics.jsonl, -resume and plots (PlotRun). Summarize is `mtbert data`: what a
// config's data holds and what alignment changed. WriteTrainText writes a pretraining
// corpus. A new config field or format name goes here; a new reader goes in mtl/corpus.
package train
