package bulk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShardFromEnv(t *testing.T) {
	for _, c := range []struct {
		name   string
		env    map[string]string
		shards int
		i, n   int
		src    string // a part of Source, or of the error when bad
		bad    bool
	}{
		{"slurm count", map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"}, 0, 2, 4, "Slurm job array", false},
		{"slurm 1-4", map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"}, 0, 0, 4, "SLURM_ARRAY_TASK_MIN=1", false},
		{"slurm step", map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "2"}, 0, 0, 0, "contiguous", true},
		{"slurm bad", map[string]string{"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"}, 0, 0, 0, "SLURM_ARRAY_TASK_ID", true},
		{"slurm rerun", map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "2"}, 4, 2, 4, "-shards=4", false},
		{"slurm beyond shards", map[string]string{"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "4"}, 4, 0, 0, "not below -shards 4", true},
		{"slurm wins", map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3", "JOB_COMPLETION_INDEX": "1"}, 0, 3, 4, "Slurm", false},
		{"k8s flag", map[string]string{"JOB_COMPLETION_INDEX": "5", "MTBERT_SHARDS": "6"}, 8, 5, 8, "-shards=8", false},
		{"k8s env", map[string]string{"JOB_COMPLETION_INDEX": "5", "MTBERT_SHARDS": "6"}, 0, 5, 6, "MTBERT_SHARDS=6", false},
		{"k8s no count", map[string]string{"JOB_COMPLETION_INDEX": "0"}, 0, 0, 0, "MTBERT_SHARDS", true},
		{"k8s index too big", map[string]string{"JOB_COMPLETION_INDEX": "6", "MTBERT_SHARDS": "6"}, 0, 0, 0, "not below", true},
		{"none", map[string]string{}, 4, 0, 0, "no Slurm job array", true},
	} {
		got, err := ShardFromEnv(func(k string) string { return c.env[k] }, c.shards)
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), c.src) {
				t.Errorf("%s: error %v, want one saying %q", c.name, err, c.src)
			}
			continue
		}
		if err != nil || got.Shard != c.i || got.Shards != c.n || !strings.Contains(got.Source, c.src) {
			t.Errorf("%s: %+v, %v; want %d/%d from %q", c.name, got, err, c.i, c.n, c.src)
		}
	}
	if _, err := ShardFromEnv(func(string) string { return "" }, 0); !errors.Is(err, ErrNoShardEnv) {
		t.Errorf("no scheduler: %v, want ErrNoShardEnv", err)
	}
}

// fakeRun writes an input of n lines (raw notes, JSONL notes, one bad line) and the JSONL
// output an unsharded run gives for it (every line's id and line number), and returns the
// input and the output's lines.
func fakeRun(t *testing.T, dir string, n int) (string, []string) {
	var in, out []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprint(i)
		switch i % 3 {
		case 0:
			id = fmt.Sprintf("note-%d", i)
			in = append(in, fmt.Sprintf(`{"id": %q, "text": "x"}`, id))
		case 1:
			in = append(in, "a raw note")
		default:
			if i == 5 {
				in = append(in, "{bad json")
			} else {
				in = append(in, fmt.Sprintf(`{"id": %d, "text": "y"}`, 1000+i))
				id = fmt.Sprint(1000 + i)
			}
		}
		out = append(out, fmt.Sprintf(`{"id":%q,"line":%d,"entities":{}}`, id, i))
	}
	p := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(in, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, out
}

// writeShards splits out into n shard files as -shard i/n writes them, leaving out the
// lines drop says.
func writeShards(t *testing.T, dir string, out []string, n int, drop func(shard, k int) bool) []string {
	parts := make([][]string, n)
	for _, l := range out {
		id := l[len(`{"id":"`):strings.Index(l, `","line"`)]
		s := ShardOf(id, n)
		if drop == nil || !drop(s, len(parts[s])) {
			parts[s] = append(parts[s], l)
		}
	}
	var paths []string
	for i, p := range parts {
		path := filepath.Join(dir, fmt.Sprintf("part-%d.jsonl", i))
		body := strings.Join(p, "\n")
		if len(p) > 0 {
			body += "\n"
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	in, out := fakeRun(t, dir, 200)
	want := strings.Join(out, "\n") + "\n"
	merge := func(parts []string) (string, MergeReport, error) {
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var b bytes.Buffer
		rep, err := Merge(f, parts, &b)
		return b.String(), rep, err
	}
	for _, n := range []int{1, 3, 4} {
		got, rep, err := merge(writeShards(t, t.TempDir(), out, n, nil))
		if err != nil || got != want || rep.Written != 200 || rep.Inputs != 200 {
			t.Fatalf("%d shards: %v, %d of %d written, same bytes %v", n, err, rep.Written, rep.Inputs, got == want)
		}
	}

	// Shard 2's output stops after 10 lines and shard 3's is absent: both reported by index.
	parts := writeShards(t, t.TempDir(), out, 4, func(s, k int) bool { return s == 2 && k >= 10 })
	os.Remove(parts[3])
	_, rep, err := merge(parts)
	if !errors.Is(err, ErrIncomplete) || len(rep.Gaps) != 2 || rep.Gaps[0].Shard != 2 || rep.Gaps[0].Absent || rep.Gaps[0].Missing == 0 ||
		rep.Gaps[1].Shard != 3 || !rep.Gaps[1].Absent {
		t.Fatalf("incomplete shards: %v, gaps %+v", err, rep.Gaps)
	}

	// A line twice, and an output of another shard count, are errors naming the file and line.
	parts = writeShards(t, t.TempDir(), out, 4, nil)
	b, _ := os.ReadFile(parts[1])
	first := strings.SplitAfter(string(b), "\n")[0]
	os.WriteFile(parts[1], append(b, first...), 0o644)
	if _, _, err := merge(parts); err == nil || !strings.Contains(err.Error(), parts[1]+":") {
		t.Errorf("a line twice: %v, want an error naming %s", err, parts[1])
	}
	if _, _, err := merge(writeShards(t, t.TempDir(), out, 3, nil)[:2]); err == nil || errors.Is(err, ErrIncomplete) {
		t.Errorf("outputs of 3 shards merged as 2: %v, want a line error", err)
	}

	// MergeFile puts nothing in place when incomplete.
	parts = writeShards(t, t.TempDir(), out, 2, nil)
	os.Remove(parts[0])
	f, _ := os.Open(in)
	defer f.Close()
	dst := filepath.Join(dir, "merged.jsonl")
	if _, err := MergeFile(f, parts, dst); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("MergeFile: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("an incomplete merge left %s", dst)
	}
}
