// Package corpus holds the annotated and raw text that mtbert reads and
// writes: documents and their spans, sentence pairs, every reader of the
// clinical information-extraction formats of MT-Clinical BERT (Mulyar &
// McInnes 2020) and its proxies, transparent gzip/zstd opening, the raw-text
// reader for masked-language modelling, the overlap policy that turns span
// annotations into something a token tagger can learn, and the BIO/BILOU tag
// codec. A new input format goes here: a Read function returning
// []Document or []Pair, with errors naming the file and line.
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
// transparently (detected by their magic bytes), a UTF-16 file with a
// byte-order mark is decoded to UTF-8 and a byte-order mark is never part
// of the text (brat, whose offsets count a UTF-8 mark, reads it as a
// space). Invalid UTF-8 and NUL bytes (UTF-16 without a mark) are errors. Malformed input gives an error that names the file and line,
// never a panic; errors never drop input silently.
//
// # Formats
//
//   - ReadCoNLL: token<TAB>tag lines, blank line between sentences (NCBI
//     disease, BC5CDR). One Document per sentence.
//   - ReadBrat: brat standoff .txt + .ann (Quaero, MEDDOCAN).
//   - ReadI2B2Con: i2b2-2010 .txt + .con concept files.
//   - ReadI2B2XML: i2b2-2012 (events) and i2b2-2014 (PHI) XML.
//   - ReadMedNLI, ReadMedRQE, ReadSTS, ReadSTSB, ReadBIOSSES: sentence pairs.
//
// # Tags
//
// EncodeTags writes spans as BIO or BILOU tags; DecodeTags reads them back
// with seqeval's default (lenient) rules.
//
// # Overlaps
//
// A BIO/BILOU tagger cannot represent nested or overlapping spans.
// ResolveOverlaps applies one explicit OverlapPolicy and returns an
// OverlapReport that records every span kept, dropped and collapsed.
package corpus
