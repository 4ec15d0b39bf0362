// Package mtl holds the multitask side of mtbert: the data formats of the
// clinical information-extraction tasks of MT-Clinical BERT (Mulyar &
// McInnes 2020), the overlap policy that turns span annotations into
// something a token tagger can learn, and the evaluation metrics.
//
// # Documents and spans
//
// Every named-entity reader returns []Document. A Document holds the raw
// text of one unit (a file, or one sentence for CoNLL input) and its
// annotations as []Span. Span offsets are BYTE offsets into Document.Text,
// half-open [Start,End), and Span.Text == Document.Text[Start:End] always.
// Formats that count characters (brat, i2b2 XML) are converted from Unicode
// code points to bytes when read. Discontinuous brat annotations keep their
// pieces in Span.Fragments (see Span). Sentence-pair readers return []Pair.
//
// Readers open every file through Open, so gzip and zstd files are read
// transparently (detected by their magic bytes). Invalid UTF-8 is an
// error. Malformed input gives an error that names the file and line,
// never a panic; errors never drop input silently.
//
// # Formats
//
//   - ReadCoNLL: token<TAB>tag lines, blank line between sentences (NCBI
//     disease, BC5CDR). One Document per sentence.
//   - ReadBrat: brat standoff .txt + .ann (Quaero, MEDDOCAN).
//   - ReadI2B2Con: i2b2-2010 .txt + .con concept files.
//   - ReadI2B2XML: i2b2-2012 (events) and i2b2-2014 (PHI) XML.
//   - ReadMedNLI, ReadMedRQE, ReadSTS, ReadBIOSSES: sentence pairs.
//
// # Overlaps
//
// A BIO/BILOU tagger cannot represent nested or overlapping spans.
// ResolveOverlaps applies one explicit OverlapPolicy and returns an
// OverlapReport that records every span kept, dropped and collapsed.
//
// # Metrics
//
// SpanF1 is strict span matching (exact boundaries and type, as the CoNLL
// evaluation script and seqeval). TokenF1 is the word-level micro-F1 the
// reference code of the paper reports. DecodeTags turns BIO or BILOU tag
// sequences into spans with seqeval's default (lenient) rules. Accuracy,
// MacroF1, Pearson and Spearman cover the sentence-pair tasks.
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
package mtl
