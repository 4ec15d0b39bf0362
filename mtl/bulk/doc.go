// Package bulk is the bulk prediction engine behind mtbert predict: it runs an
// mtl.Extractor over a stream of inputs and writes one result per input, in input order.
//
// Inputs, one a line (plain, gzip or zstd, through corpus.NewReader): a raw note (any line
// that does not start with '{'; its id is its line number), a JSONL note {"id", "text"} or a
// JSONL sentence pair {"id", "text_a", "text_b"}. A line that cannot be read (bad JSON,
// invalid UTF-8, missing fields) gets a Result with an Error and the others go on.
//
// Run writes to a stream (JSONL or one BioC collection); RunFile writes to a file, through a
// temporary file renamed into place at the end (compressed when its name ends in .gz or
// .zst), or, for brat, into a folder of ID.txt/ID.ann pairs. On top of the Extractor the
// engine gives:
//
//   - sharding: Options.Shard of Options.Shards keeps the inputs whose id hashes to it
//     (ShardOf: FNV-1a of the id modulo the number of shards), so independent runs split
//     one input between them and together cover every input exactly once;
//   - ordered concurrency: Options.Workers goroutines run batches of Options.Batch inputs
//     (the notes of a batch share forward passes); the output is byte for byte that of one
//     worker;
//   - resuming: with Options.Resume, RunFile skips the inputs already in its output (the ids
//     of a JSONL file, the .ann files of a brat folder) and keeps what was there;
//   - interruption: when the context ends, the results of a prefix of the inputs, in input
//     order, are kept (put in place) and the error wraps ErrInterrupted;
//   - writers: JSONL (Result), brat standoff (BratAnn, BratFileName) and BioC JSON
//     (NewBioCDocument and the BioC types), usable on their own;
//   - progress: a line drawn on Options.Progress, and Options.OnResult called in input order
//     for every result written.
package bulk
