// Package bert implements BERT as Hugging Face transformers.BertModel computes it: config,
// WordPiece tokenizer, model, checkpoint loading and saving.
//
// # Tokenizer
//
// Tokenizer reproduces Hugging Face's (Python, "slow") BertTokenizer: the raw text is split at
// the special tokens, then BasicTokenizer cleans it, isolates CJK ideographs, splits on
// whitespace, lowercases and strips accents when asked, and splits off punctuation; each piece
// is then segmented by greedy longest-match-first WordPiece:
//
//	"Pt takes 5mg b.i.d." -> Pt | takes | 5 | ##mg | b | . | i | . | d | .   (uncased vocabulary, lowercased)
//
// Every token carries the byte span [Start, End) of its source in the original string, so
// text[Start:End] is where it came from even after lowercasing and accent stripping
// (RuneOffsets converts to character offsets). Encode and EncodePair build
// [CLS] a [SEP] (b [SEP]) with Hugging Face's longest_first truncation.
//
// # Lowercasing pitfall
//
// Bio+Clinical BERT (emilyalsentzer/Bio_ClinicalBERT), the encoder of MT-Clinical BERT, ships
// a CASED vocabulary (that of bert-base-cased, 28,996 ids) and no tokenizer_config.json.
// Hugging Face's BertTokenizer defaults to do_lower_case=True, so loading that checkpoint with
// AutoTokenizer lowercases (and strips accents from) text fed to a cased vocabulary: "Patient"
// becomes "patient" and capitalised words that the vocabulary holds whole are split into
// lowercase pieces. The reference MT-Clinical BERT code does exactly this. LoadTokenizer takes
// the default to use when no tokenizer_config.json says otherwise; DefaultLowerCase (true)
// reproduces Hugging Face and the reference numbers, false tokenises as the vocabulary was
// built. Whatever a command's flag defaults to, it must say so.
package bert
