package train

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"
)

func TestPlotRun(t *testing.T) {
	dir := t.TempDir()
	lines := `{"step":0,"epoch":0,"task":"ner","loss":2.0,"lr":0.001,"tokens":10,"tokens_per_s":1,"seconds":0.1}
{"step":1,"epoch":0,"task":"nli","loss":0.7,"lr":0.001,"tokens":10,"tokens_per_s":1,"seconds":0.1}
{"step":2,"epoch":0.5,"task":"ner","loss":1.0,"lr":0.001,"tokens":10,"tokens_per_s":1,"seconds":0.1}
{"step":3,"epoch":1,"split":"dev","task":"ner","main":"span_f1","span_f1":0.5,"token_f1":0.6}
{"step":3,"epoch":1,"split":"dev","task":"nli","main":"accuracy","accuracy":0.7}
`
	if err := os.WriteFile(filepath.Join(dir, MetricsFile), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PlotRun(dir, 2); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{LossPlotFile, DevPlotFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if w := img.Bounds().Dx(); w < 500 {
			t.Fatalf("%s: %d pixels wide", f, w)
		}
	}
	os.WriteFile(filepath.Join(dir, MetricsFile), []byte("{\"step\":1}\nnot json\n"), 0o644)
	if err := PlotRun(dir, 2); err == nil || !strings.Contains(err.Error(), "metrics.jsonl:2") {
		t.Fatalf("bad line: %v", err)
	}
}

func TestMovingAverage(t *testing.T) {
	got := movingAverage(plotter.XYs{{X: 0, Y: 1}, {X: 1, Y: 3}, {X: 2, Y: 5}, {X: 3, Y: 7}}, 2)
	want := []float64{1, 2, 4, 6}
	for i, w := range want {
		if math.Abs(got[i].Y-w) > 1e-12 {
			t.Fatalf("moving average %v, want %v", got, want)
		}
	}
}
