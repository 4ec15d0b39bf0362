package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl/corpus"
)

// holdoutConfig writes a BIOSSES-like TSV of n pairs to a temporary folder and
// returns the body of a config with one regression task over it (holdout
// appended by the caller) and the config's path.
func holdoutConfig(t *testing.T, n int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("id\tsentence1\tsentence2\tscore\n")
	for i := range n {
		fmt.Fprintf(&b, "%d\tsentence %d a\tsentence %d b\t%d\n", i+1, i, i, i%5)
	}
	if err := os.WriteFile(filepath.Join(dir, "pairs.tsv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	vocab, err := filepath.Abs(filepath.Join(cfgDir, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	body := "encoder:\n  vocab: " + vocab + "\ntasks:\n  - name: sim\n    kind: regression\n    format: biosses\n    train: pairs.tsv\n"
	return body, filepath.Join(dir, "x.yaml")
}

func pairIDs(ps []corpus.Pair) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestHoldout(t *testing.T) {
	body, path := holdoutConfig(t, 20)
	c, err := ParseConfig([]byte(body+"    holdout: {dev: 0.1, test: 0.2}\n"), path, "")
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Tasks[0].Holdout; h == nil || *h != (HoldoutConfig{Dev: 0.1, Test: 0.2, Seed: 1}) {
		t.Fatalf("holdout %+v, want the seed defaulted to 1", h)
	}
	var names []string
	for _, s := range c.Tasks[0].Splits() {
		names = append(names, s.Name)
		if !reflect.DeepEqual(s.Paths, c.Tasks[0].Train) {
			t.Errorf("%s paths %q, want the train paths", s.Name, s.Paths)
		}
	}
	if strings.Join(names, " ") != "train dev test" {
		t.Errorf("splits %v", names)
	}
	lt, err := c.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{SplitTrain: 14, SplitDev: 2, SplitTest: 4}
	seen := map[string]string{}
	for _, sd := range lt.Splits {
		if len(sd.Pairs) != sizes[sd.Split] {
			t.Errorf("%s: %d pairs, want %d", sd.Split, len(sd.Pairs), sizes[sd.Split])
		}
		last := 0
		for _, p := range sd.Pairs {
			if s, dup := seen[p.ID]; dup {
				t.Errorf("pair %s in %s and %s", p.ID, s, sd.Split)
			}
			seen[p.ID] = sd.Split
			var id int
			fmt.Sscan(p.ID, &id)
			if id <= last {
				t.Errorf("%s: pair %s after %d, want file order", sd.Split, p.ID, last)
			}
			last = id
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d distinct pairs over the splits, want all 20", len(seen))
	}
	// Deterministic for a seed, different for another.
	again, _ := c.Load(0)
	if !reflect.DeepEqual(pairIDs(again.Split(SplitTest).Pairs), pairIDs(lt.Split(SplitTest).Pairs)) {
		t.Error("a second load split differently")
	}
	c2, err := ParseConfig([]byte(body+"    holdout: {dev: 0.1, test: 0.2, seed: 7}\n"), path, "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := c2.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(pairIDs(other.Split(SplitTest).Pairs), pairIDs(lt.Split(SplitTest).Pairs)) {
		t.Error("seeds 1 and 7 gave the same test split")
	}

	// Only a dev split held out, next to the task's own test paths; at least
	// one item for a positive fraction.
	c3, err := ParseConfig([]byte(body+"    test: pairs.tsv\n    holdout: {dev: 0.01}\n"), path, "")
	if err != nil {
		t.Fatal(err)
	}
	l3, err := c3.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	if n, d, s := len(l3.Split(SplitTrain).Pairs), len(l3.Split(SplitDev).Pairs), len(l3.Split(SplitTest).Pairs); n != 19 || d != 1 || s != 20 {
		t.Errorf("dev holdout: train %d, dev %d, test %d; want 19, 1, 20", n, d, s)
	}

	// NER documents (CoNLL sentences) split the same way.
	c4, err := ParseConfig([]byte(minimal+"    holdout: {test: 0.3}\n"), filepath.Join(cfgDir, "x.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	l4, err := c4.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := corpus.ReadCoNLL(filepath.Join(cfgDir, "ner.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	tr, te := l4.Split(SplitTrain), l4.Split(SplitTest)
	if l4.Split(SplitDev) != nil || te == nil || len(te.Docs) == 0 || len(tr.Docs)+len(te.Docs) != len(all) {
		t.Errorf("ner holdout: %d documents, splits %+v", len(all), l4.Splits)
	}
	if te != nil && te.Read.Documents != len(te.Docs) {
		t.Errorf("test stats %+v", te.Read)
	}

	// Too few items to leave a train split.
	c5, err := ParseConfig([]byte(body+"    holdout: {dev: 0.5, test: 0.49}\n"), path, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c5.Load(0); err == nil || !strings.Contains(err.Error(), "leaves no train items") {
		t.Errorf("load of an over-large holdout: %v", err)
	}
}

func TestHoldoutErrors(t *testing.T) {
	body, path := holdoutConfig(t, 10)
	for _, tc := range []struct{ extra, field, msg string }{
		{"    holdout: {dev: 0.1, tset: 0.2}\n", "tasks[0].holdout.tset", "unknown field (want one of dev, test, seed)"},
		{"    holdout: 0.1\n", "tasks[0].holdout", "want a mapping"},
		{"    holdout: {dev: -0.1}\n", "tasks[0].holdout.dev", "out of range [0, 1)"},
		{"    holdout: {test: 1}\n", "tasks[0].holdout.test", "out of range [0, 1)"},
		{"    holdout: {dev: 0.5, test: 0.5}\n", "tasks[0].holdout", "dev + test = 1, must be in (0, 1)"},
		{"    holdout: {seed: 3}\n", "tasks[0].holdout", "dev + test = 0"},
		{"    dev: pairs.tsv\n    holdout: {dev: 0.1}\n", "tasks[0].holdout.dev", "the task has its own dev paths"},
		{"    test: pairs.tsv\n    holdout: {dev: 0.1, test: 0.1}\n", "tasks[0].holdout.test", "the task has its own test paths"},
	} {
		_, err := ParseConfig([]byte(body+tc.extra), path, "")
		var ce *ConfigError
		if err == nil || !errors.As(err, &ce) {
			t.Errorf("%q: err = %v, want a ConfigError", tc.extra, err)
			continue
		}
		if ce.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q:\n got %v (field %q)\nwant field %q and %q", tc.extra, err, ce.Field, tc.field, tc.msg)
		}
	}
}
