package nn

import (
	"slices"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/tensor"
)

// TestFusedMatchesSeparateLayers checks that the stacked product gives, column block by column
// block, bit for bit what each packed layer gives alone, and that it steps aside (nil) on a
// recording tape, after a weight changes, and for layers it cannot stack.
func TestFusedMatchesSeparateLayers(t *testing.T) {
	g := tensor.NewRNG(11)
	ps := NewParams()
	root := Root(ps)
	in, rows := 40, 9
	ls := []*Linear{NewLinear(root.Sub("a"), g, in, 24, true, 0.5), NewLinear(root.Sub("b"), g, in, 16, true, 0.5), NewLinear(root.Sub("c"), g, in, 32, true, 0.5)}
	for _, l := range ls {
		l.B.Value.FillNormal(g, 0, 1)
		l.Pack()
	}
	f := NewFused(ls...)
	f.Pack()
	x := autograd.NewParam("x", tensor.New(rows, in))
	x.Value.FillNormal(g, 0, 1)
	tp := autograd.NoGrad()
	got := f.Forward(tp, x)
	if got == nil {
		t.Fatal("Forward returned nil after Pack")
	}
	gd := got.Value.Data()
	col := 0
	for i, l := range ls {
		want := l.Forward(tp, x).Value.Data()
		out := l.W.Shape()[0]
		for r := range rows {
			for j := range out {
				if a, b := gd[r*72+col+j], want[r*out+j]; a != b {
					t.Fatalf("layer %d row %d column %d: stacked %v, alone %v", i, r, j, a, b)
				}
			}
		}
		col += out
	}
	if f.Forward(autograd.NewTape(), x) != nil {
		t.Error("Forward on a recording tape did not step aside")
	}
	ls[2].B.Value.Data()[0] += 1
	ls[2].B.Modified()
	if f.Forward(tp, x) != nil {
		t.Error("Forward used stacked biases older than a layer's B")
	}
	f.Pack()
	ls[1].W.Value.Data()[3] += 1
	ls[1].W.Modified()
	if f.Forward(tp, x) != nil {
		t.Error("Forward used stacked weights older than a layer's W")
	}
	odd := NewFused(ls[0], NewLinear(root.Sub("d"), g, in+1, 8, true, 0.5))
	odd.Pack()
	if odd.Packed() {
		t.Error("layers with different input sizes were stacked")
	}
	// DropFloat leaves the stacked copy as the only one, and Forward gives the same values.
	f.Pack()
	before := f.Forward(tp, x).Value.ToHost()
	f.DropFloat()
	for _, l := range ls {
		if l.W.Value.Len() != 0 {
			t.Fatalf("%s keeps %d float weights after DropFloat", l.W.Name, l.W.Value.Len())
		}
	}
	if after := f.Forward(tp, x); after == nil || !slices.Equal(after.Value.ToHost(), before) {
		t.Fatal("the stacked product changed (or stepped aside) after DropFloat")
	}
}
