package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/corpus"
)

func init() {
	register("vocab", "build a WordPiece vocabulary (vocab.txt) from text files", runVocab)
}

// listFlag is a flag that may be repeated and takes comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func runVocab(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("vocab", "vocab -in FILES -size N -out vocab.txt [-lower-case] [-min-freq K] [-score likelihood|frequency]", stderr)
	var in listFlag
	fs.Var(&in, "in", "text files or folders, comma-separated or repeated (required). A file is read whole, "+
		"line by line, whatever its name (gzip and zstd are detected); a folder contributes every *.txt, *.txt.gz and "+
		"*.txt.zst file below it (a brat folder's texts, say), in path order. Words never span lines, so one document "+
		"per line and whole documents count the same")
	size := fs.Int("size", 8000, "vocabulary size, special tokens included (training stops earlier when nothing is left to merge)")
	out := fs.String("out", "", "vocab.txt to write (required; replaced if it exists)")
	lower := fs.Bool("lower-case", false, "lowercase and strip accents before counting; the tokenizer must then lowercase too "+
		"(a cased vocabulary needs encoder.lower_case: false in a config)")
	minFreq := fs.Int("min-freq", bert.DefaultMinFrequency, "smallest pair count that may be merged")
	score := fs.String("score", "likelihood", "merge ranking: likelihood (freq(ab)/(freq(a)freq(b)), WordPiece as the Hugging Face course describes it) "+
		"or frequency (freq(ab), what Hugging Face tokenizers' WordPieceTrainer does)")
	maxChars := fs.Int("max-chars", bert.DefaultMaxInputCharsPerWord, "words longer than this many characters are not counted (the tokenizer makes them [UNK])")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(in) == 0 || *out == "" {
		fs.Usage()
		return errUsage
	}
	sc, err := bert.ParseMergeScore(*score)
	if err != nil {
		return err
	}
	if *minFreq < 1 {
		return fmt.Errorf("-min-freq %d: must be at least 1", *minFreq)
	}
	files, err := vocabInputs(in)
	if err != nil {
		return err
	}
	start := time.Now()
	tr, err := bert.NewWordPieceTrainer(bert.WordPieceOptions{Size: *size, LowerCase: *lower, MinFrequency: *minFreq, Score: sc, MaxInputCharsPerWord: *maxChars})
	if err != nil {
		return err
	}
	var nBytes int64
	for _, f := range files {
		n, err := addFile(tr, f)
		if err != nil {
			return err
		}
		nBytes += n
	}
	counted := time.Since(start)
	v, st, err := tr.Train()
	if err != nil {
		return err
	}
	if err := v.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "read %d file(s), %d bytes: %d words (%d distinct, %d over %d characters skipped) in %.2fs\n",
		len(files), nBytes, st.Words, st.DistinctWords, st.SkippedLong, *maxChars, counted.Seconds())
	fmt.Fprintf(stderr, "wrote %s: %d tokens = %d special + %d alphabet + %d merged (%s score, stopped: %s) in %.2fs total\n",
		*out, v.Len(), st.Specials, st.Alphabet, st.Merges, sc, stopReason(st.Stop, *size, *minFreq), time.Since(start).Seconds())
	return nil
}

func stopReason(stop string, size, minFreq int) string {
	switch stop {
	case "size":
		return fmt.Sprintf("size %d reached", size)
	case "min-frequency":
		return fmt.Sprintf("no pair occurs %d times", minFreq)
	}
	return "every word is a single token"
}

// vocabInputs expands folders into their text files; files are kept as given.
func vocabInputs(in []string) ([]string, error) {
	var files []string
	for _, p := range in {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if !d.IsDir() && (strings.HasSuffix(name, ".txt") || strings.HasSuffix(name, ".txt.gz") || strings.HasSuffix(name, ".txt.zst")) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no *.txt file in this folder", p)
		}
		slices.Sort(found)
		files = append(files, found...)
	}
	return files, nil
}

// addFile feeds a file to the trainer line by line and returns the bytes read.
func addFile(tr *bert.WordPieceTrainer, path string) (int64, error) {
	rc, err := corpus.Open(path)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<20)
	var n int64
	for {
		line, err := br.ReadString('\n')
		n += int64(len(line))
		if line != "" {
			tr.Add(line)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
	}
}
