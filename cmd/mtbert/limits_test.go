package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
)

// TestMaxModelBytesFlag: -max-model-bytes lowers the limit config.json is checked against
// (issue 14, item 2), and the next command starts from the default again.
func TestMaxModelBytesFlag(t *testing.T) {
	dir := tinyModelDir(t)
	in := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(in, []byte(`{"text": "patient denies fever ."}`+"\n"), 0o644)
	out := filepath.Join(t.TempDir(), "out.safetensors")
	_, stderr := runCmd(t, 1, "encode", "-model", dir, "-in", in, "-out", out, "-max-model-bytes", "1000")
	if !strings.Contains(stderr, "config.json: ") || !strings.Contains(stderr, "more than the limit of 1000 bytes (raise it with -max-model-bytes)") {
		t.Errorf("encode -max-model-bytes 1000: %s", stderr)
	}
	runCmd(t, 2, "encode", "-model", dir, "-in", in, "-out", out, "-max-model-bytes", "-5")
	runCmd(t, 0, "encode", "-model", dir, "-in", in, "-out", out)
	if bert.MaxModelBytes != bert.DefaultMaxModelBytes {
		t.Errorf("MaxModelBytes %d after a command without the flag", bert.MaxModelBytes)
	}
	for _, c := range []string{"train", "pretrain", "eval", "predict", "serve", "fill"} {
		if _, stderr := runCmd(t, 0, c, "-h"); !strings.Contains(stderr, "-max-model-bytes") {
			t.Errorf("%s -h lacks -max-model-bytes", c)
		}
	}
}
