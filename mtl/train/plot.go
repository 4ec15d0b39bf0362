package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/mtbert/mtbert/bert"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot files written next to metrics.jsonl.
const (
	LossPlotFile = "loss.png"
	DevPlotFile  = "dev.png"
)

// metricsLine is the union of the step and evaluation lines of metrics.jsonl.
type metricsLine struct {
	Step  int      `json:"step"`
	Task  string   `json:"task"`
	Loss  *float64 `json:"loss"`
	Split string   `json:"split"`
	Main  string   `json:"main"`
	raw   map[string]any
}

// PlotRun reads dir/metrics.jsonl and writes dir/loss.png (each task's training loss against
// the step, smoothed by a moving average over smooth of the task's steps) and dir/dev.png
// (each task's main dev metric at every evaluation). A run with no evaluation gets no dev.png.
func PlotRun(dir string, smooth int) error {
	path := filepath.Join(dir, MetricsFile)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	loss := map[string]plotter.XYs{}
	dev := map[string]plotter.XYs{}
	devName := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var l metricsLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		switch {
		case l.Split == SplitDev:
			if err := json.Unmarshal(sc.Bytes(), &l.raw); err != nil {
				return fmt.Errorf("%s:%d: %w", path, n, err)
			}
			if v, ok := l.raw[l.Main].(float64); ok {
				dev[l.Task] = append(dev[l.Task], plotter.XY{X: float64(l.Step), Y: v})
				devName[l.Task] = l.Main
			}
		case l.Loss != nil:
			loss[l.Task] = append(loss[l.Task], plotter.XY{X: float64(l.Step), Y: *l.Loss})
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(loss) == 0 {
		return fmt.Errorf("%s: no training steps to plot", path)
	}
	for t, xy := range loss {
		loss[t] = movingAverage(xy, smooth)
	}
	if err := savePlot(filepath.Join(dir, LossPlotFile), "training loss per task", "step", "loss (moving average)", loss, nil); err != nil {
		return err
	}
	if len(dev) == 0 {
		return nil
	}
	return savePlot(filepath.Join(dir, DevPlotFile), "dev metric per task", "step", "main metric", dev, devName)
}

// movingAverage returns the trailing mean over window points of xy.
func movingAverage(xy plotter.XYs, window int) plotter.XYs {
	if window <= 1 {
		return xy
	}
	out := make(plotter.XYs, len(xy))
	var sum float64
	for i, p := range xy {
		sum += p.Y
		if i >= window {
			sum -= xy[i-window].Y
		}
		out[i] = plotter.XY{X: p.X, Y: sum / float64(min(i+1, window))}
	}
	return out
}

func savePlot(path, title, x, y string, series map[string]plotter.XYs, labels map[string]string) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	p.Legend.Top = true
	names := make([]string, 0, len(series))
	for n := range series {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		line, err := plotter.NewLine(series[n])
		if err != nil {
			return fmt.Errorf("%s: task %s: %w", path, n, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.2)
		label := n
		if labels != nil {
			label = n + " (" + labels[n] + ")"
		}
		p.Add(line)
		p.Legend.Add(label, line)
	}
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	w, err := p.WriterTo(8*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return err
	}
	return bert.WriteFileAtomic(path, func(f io.Writer) error { _, err := w.WriteTo(f); return err })
}
