// Package synth generates the synthetic clinical corpus of `mtbert demo` and of the serving
// benchmarks: notes annotated for three ner tasks at once (medication, clinical concepts,
// PHI), and sentence pairs for entailment and similarity, all from templates and word lists
// embedded here, with a config that trains on them (WriteCorpus). It is a tour of the
// pipeline and a load generator, not data to measure a model on.
package synth
