package corpus

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

func TestReadMedNLI(t *testing.T) {
	p := "../testdata/pairs/mednli.jsonl"
	got, err := ReadMedNLI(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Pair{
		{ID: "23eb94b8-66c7-11e7-a8dc-f45c89b91419", TextA: "Labs were notable for Cr 1.7 (baseline 0.5 per old records) and lactate 2.4.", TextB: " Patient has elevated Cr", Label: "entailment", Source: p},
		{ID: "23eb979c-66c7-11e7-8c58-f45c89b91419", TextA: "Labs were notable for Cr 1.7 (baseline 0.5 per old records) and lactate 2.4.", TextB: "Patient has normal Cr", Label: "contradiction", Source: p},
		{ID: p + ":4", TextA: "He denies fever — no chills.", TextB: "The patient is afebrile.", Label: "neutral", Source: p},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	dir := t.TempDir()
	for _, c := range []struct{ name, content, part string }{
		{"a.jsonl", `{"sentence1":"a","sentence2":"b","gold_label":"neutral"}` + "\n" + `{"sentence1":"a","gold_label":"neutral"}`, `a.jsonl:2: field "sentence2"`},
		{"b.jsonl", `{"sentence1":"a","sentence2":"b","gold_label":"neutral"`, "b.jsonl:1:"},
		{"c.jsonl", `["a","b"]`, "c.jsonl:1:"},
		{"d.jsonl", `{"sentence1":"a","sentence2":"b","gold_label":""}`, `d.jsonl:1: field "gold_label"`},
	} {
		_, err := ReadMedNLI(mtltest.WriteFile(t, dir, c.name, c.content))
		mtltest.WantErr(t, err, c.part)
	}
}

func TestReadMedRQE(t *testing.T) {
	p := "../testdata/pairs/medrqe.xml"
	got, err := ReadMedRQE(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Pair{
		{ID: "1", TextA: "How should I treat polymenorrhea in a 14-year-old girl?", TextB: "How should I treat polymenorrhea?", Label: "true", Source: p},
		{ID: "2", TextA: "Bloating & gas after vitamin D?", TextB: "What are the side effects of Florinef?", Label: "false", Source: p},
		{ID: "3", TextA: "Is café au lait spotting a concern?", TextB: "What are café au lait spots?", Label: "true", Source: p},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	data, _ := os.ReadFile(p)
	g := string(data)
	dir := t.TempDir()
	for _, c := range []struct {
		name, content string
		parts         []string
	}{
		{"trunc.xml", g[:strings.Index(g, "<faq>What are the")], []string{"trunc.xml:", "truncated"}},
		{"value.xml", strings.Replace(g, `value="false"`, `value="maybe"`, 1), []string{"value.xml:11:", `"maybe"`}},
		{"nofaq.xml", strings.Replace(g, "<faq>What are café au lait spots?</faq>", "", 1), []string{"nofaq.xml:15:", "pair 3"}},
		{"nopid.xml", strings.Replace(g, `pid="2" `, "", 1), []string{"nopid.xml:11:", "without pid"}},
	} {
		_, err := ReadMedRQE(mtltest.WriteFile(t, dir, c.name, c.content))
		mtltest.WantErr(t, err, c.parts...)
	}
}

// TestReadMedRQEReal checks the RQE corpus sizes of its README (8588
// training, 302 test pairs) and the label counts measured with grep.
func TestReadMedRQEReal(t *testing.T) {
	for _, c := range []struct {
		file             string
		n, true_, false_ int
		empty            int
	}{
		{"medrqe/RQE_Train_8588_AMIA2016.xml", 8588, 4655, 3933, 1},
		{"medrqe/RQE_Test_302_pairs_AMIA2016.xml", 302, 129, 173, 0},
	} {
		pairs, err := ReadMedRQE(mtltest.DataPath(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		empty := 0
		for _, p := range pairs {
			n[p.Label]++
			if p.TextA == "" || p.TextB == "" {
				empty++
			}
			if strings.TrimSpace(p.TextA) != p.TextA || strings.TrimSpace(p.TextB) != p.TextB {
				t.Fatalf("%s: pair %s has untrimmed text", c.file, p.ID)
			}
		}
		if empty != c.empty {
			t.Errorf("%s: %d pairs with an empty question, want %d", c.file, empty, c.empty)
		}
		if len(pairs) != c.n || n["true"] != c.true_ || n["false"] != c.false_ {
			t.Errorf("%s: %d pairs %v; want %d, %d true, %d false", c.file, len(pairs), n, c.n, c.true_, c.false_)
		}
	}
}

func TestReadSTS(t *testing.T) {
	train, err := ReadSTS("../testdata/pairs/sts-train.tsv", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(train) != 3 || train[0].Score != 4.5 || train[1].Score != 0 || train[2].Score != 3.25 ||
		train[2].TextB != "Return in two weeks." || !train[1].HasScore || train[1].ID != "../testdata/pairs/sts-train.tsv:2" {
		t.Errorf("train %+v", train)
	}
	test, err := ReadSTS("../testdata/pairs/sts-test.tsv", "../testdata/pairs/sts-test-labels.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(test) != 2 || test[0].Score != 4.75 || test[1].Score != 1 || test[1].TextA != "Discharged home." {
		t.Errorf("test %+v", test)
	}
	dir := t.TempDir()
	_, err = ReadSTS(mtltest.WriteFile(t, dir, "a.tsv", "x\ty\t1\nx\ty\n"), "")
	mtltest.WantErr(t, err, "a.tsv:2:", "want 3", "got 2")
	_, err = ReadSTS(mtltest.WriteFile(t, dir, "b.tsv", "x\ty\tfive\n"), "")
	mtltest.WantErr(t, err, "b.tsv:1:", `"five"`)
	_, err = ReadSTS("../testdata/pairs/sts-test.tsv", mtltest.WriteFile(t, dir, "l.txt", "1\n"))
	mtltest.WantErr(t, err, "sts-test.tsv:2:", "no score")
	_, err = ReadSTS("../testdata/pairs/sts-test.tsv", mtltest.WriteFile(t, dir, "l.txt", "1\n2\n3\n"))
	mtltest.WantErr(t, err, "l.txt:3:", "3 scores for 2 pairs")
	_, err = ReadSTS("../testdata/pairs/sts-test.tsv", mtltest.WriteFile(t, dir, "l.txt", "1\nNaN\n"))
	mtltest.WantErr(t, err, "l.txt:2:", "not finite")
}

func TestReadBIOSSES(t *testing.T) {
	got, err := ReadBIOSSES("../testdata/pairs/biosses.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "1" || got[1].Score != 2.2 || got[2].ID != "7" || got[2].TextB != "The weather is nice." {
		t.Errorf("got %+v", got)
	}
	dir := t.TempDir()
	_, err = ReadBIOSSES(mtltest.WriteFile(t, dir, "a.tsv", "id\tsentence1\tsentence2\tscore\n1\ta\tb\t2\n2\ta\tb\n"))
	mtltest.WantErr(t, err, "a.tsv:3:", "want 4")
	_, err = ReadBIOSSES(mtltest.WriteFile(t, dir, "b.tsv", "id\tsentence1\tsentence2\n"))
	mtltest.WantErr(t, err, "b.tsv:1:", `"score"`)
}

// TestReadBIOSSESReal: 100 pairs; the score column sums to 219.8 and the
// last pair (id 100) scores 1.80 (awk over biosses_all.tsv).
func TestReadBIOSSESReal(t *testing.T) {
	pairs, err := ReadBIOSSES(mtltest.DataPath(t, "biosses/biosses_all.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, p := range pairs {
		sum += p.Score
	}
	if len(pairs) != 100 || pairs[99].ID != "100" || pairs[99].Score != 1.8 || pairs[0].Score != 4 {
		t.Errorf("%d pairs, last %+v", len(pairs), pairs[len(pairs)-1])
	}
	if d := sum - 219.8; d > 1e-9 || d < -1e-9 {
		t.Errorf("score sum %v, want 219.8", sum)
	}
}

// TestReadSTSB reads the hand-made fixtures of mtl/testdata/stsb, which follow the two
// layouts STS-B ships in: the benchmark's tab-separated .csv (no header; a line with the two
// extra source columns some lines carry) and GLUE's .tsv with its header (test.tsv without
// the score column).
func TestReadSTSB(t *testing.T) {
	dir := "../testdata/stsb/"
	for _, c := range []struct {
		file string
		want []Pair
	}{
		{"sts-train.csv", []Pair{
			{ID: dir + "sts-train.csv:1", TextA: "A plane is taking off.", TextB: "An air plane is taking off.", Score: 5, HasScore: true},
			{ID: dir + "sts-train.csv:2", TextA: "A man is playing a flute.", TextB: "A man is playing a bamboo flute.", Score: 3.8, HasScore: true},
			{ID: dir + "sts-train.csv:3", TextA: `The "new" law passed.`, TextB: "Rain is expected today.", Score: 0.6, HasScore: true},
		}},
		{"sts-test.csv", []Pair{
			{ID: dir + "sts-test.csv:1", TextA: "A girl is styling her hair.", TextB: "A girl is brushing her hair.", Score: 2.5, HasScore: true},
			{ID: dir + "sts-test.csv:2", TextA: "I do not agree.", TextB: "The cat sat down.", Score: 0, HasScore: true},
		}},
		{"train.tsv", []Pair{
			{ID: dir + "train.tsv:2", TextA: "A plane is taking off.", TextB: "An air plane is taking off.", Score: 5, HasScore: true},
			{ID: dir + "train.tsv:3", TextA: "A man is playing a flute.", TextB: "A man is playing a bamboo flute.", Score: 3.8, HasScore: true},
		}},
		{"test.tsv", []Pair{
			{ID: dir + "test.tsv:2", TextA: "A girl is styling her hair.", TextB: "A girl is brushing her hair."},
		}},
	} {
		got, err := ReadSTSB(dir + c.file)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.want {
			c.want[i].Source = dir + c.file
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", c.file, got, c.want)
		}
	}
	tmp := t.TempDir()
	for _, c := range []struct{ name, content, part string }{
		{"short.csv", "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane.\n", "short.csv:1: want at least 7 tab-separated columns"},
		{"score.csv", "main-captions\tMSRvid\t2012test\t0001\t5.000\ta\tb\nmain-captions\tMSRvid\t2012test\t0002\tfive\ta\tb\n", `score.csv:2: score "five" is not a number`},
		{"cols.tsv", "index\tgenre\tsentence1\tsentence2\tscore\n0\tx\ta\tb\n", "cols.tsv:2: want 5 tab-separated columns as the header, got 4"},
		{"nos1.tsv", "index\tgenre\tsentence2\tscore\n", `nos1.tsv:1: header lacks column "sentence1"`},
	} {
		_, err := ReadSTSB(mtltest.WriteFile(t, tmp, c.name, c.content))
		mtltest.WantErr(t, err, c.part)
	}
}
