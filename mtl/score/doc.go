// Package score holds the evaluation metrics of mtbert, as pure functions over
// gold and predicted values: SpanF1 is strict span matching (exact
// boundaries and type, as the CoNLL evaluation script and seqeval); TokenF1 is
// the word-level micro-F1 the reference code of the paper reports; Accuracy,
// MacroF1, Pearson and Spearman cover the sentence-pair tasks. Nothing here
// runs a model: mtl's evaluation computes predictions and calls these.
package score
