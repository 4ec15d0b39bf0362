package bert

import (
	"math"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/tensor"
)

// rowsFixture builds a model with an MLM head and a pooler (cfg's sizes, hidden and attention
// dropout drop, weights drawn with std 0.2 so that no gradient is negligibly small) and a
// batch of B sequences of T tokens, the last one padded over its final third, with position 1
// of every sequence and about one other real position in seven masked: the input id there
// becomes 3, the label the original id.
func rowsFixture(t *testing.T, cfg Config, b, tt int, drop float64) (*Model, Batch, []int32) {
	t.Helper()
	cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = drop, drop
	cfg.InitializerRange = 0.2
	m, err := New(cfg, 7, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddMLMHead(8); err != nil {
		t.Fatal(err)
	}
	g := tensor.NewRNG(9)
	n := b * tt
	bt := Batch{B: b, T: tt, IDs: make([]int32, n), TypeIDs: make([]int32, n), Mask: make([]float32, n)}
	labels := make([]int32, n)
	for i := range bt.IDs {
		bt.IDs[i], labels[i] = int32(4+g.IntN(cfg.VocabSize-4)), autograd.IgnoreIndex
		if i%tt >= tt/2 {
			bt.TypeIDs[i] = 1
		}
		if i/tt == b-1 && i%tt >= tt-tt/3 {
			bt.IDs[i] = 0 // padding
			continue
		}
		bt.Mask[i] = 1
		if g.IntN(7) == 0 || i%tt == 1 {
			labels[i], bt.IDs[i] = bt.IDs[i], 3
		}
	}
	if pos, _ := MaskedPositions(labels); len(pos) < 2 {
		t.Fatalf("fixture masks %d positions", len(pos))
	}
	return m, bt, labels
}

// rowsCases are the dropout settings ForwardRows is compared with Forward under: none, the
// hidden and attention dropout of training, and that dropout on a data-parallel rank's slice
// (Row0 = 5), where the masks are keyed by the row in the whole batch.
var rowsCases = []struct {
	name string
	drop float64
	row0 int
}{
	{"no-dropout", 0, 0},
	{"dropout", 0.1, 0},
	{"dropout-row0", 0.1, 5},
}

// rowsConfig is a small encoder whose sizes are not multiples of the GEMM's blocks.
func rowsConfig() Config {
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads = 301, 72, 3, 4
	cfg.IntermediateSize, cfg.MaxPositionEmbeddings = 200, 64
	return cfg
}

// TestForwardRowsMatchesForward runs a training pass (recording tape) of Forward and of
// ForwardRows at the masked positions under each dropout setting, and checks, bit for bit:
// every Hidden entry but the last, ForwardRows' Last against Forward's Last gathered at the
// rows, and MLMLoss (which uses ForwardRows) against Forward then MLMHead.Loss. Row-wise
// kernels compute each row alone, and the row dropout draws Forward's masks, so nothing may
// differ. It also checks that both passes draw the same number of dropout seeds and that
// ForwardRows computes no pooler.
func TestForwardRowsMatchesForward(t *testing.T) {
	for _, c := range rowsCases {
		t.Run(c.name, func(t *testing.T) {
			m, b, labels := rowsFixture(t, rowsConfig(), 3, 19, c.drop)
			m.Dropout.Row0 = c.row0
			train := c.drop > 0
			pos, _ := MaskedPositions(labels)
			h, H := m.MLMHead(), m.Cfg.HiddenSize

			tp := autograd.NewTape()
			defer tp.Reset()
			m.Dropout.SetCalls(0)
			full, err := m.Forward(tp, b, train)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := h.Loss(tp, full.Last, labels)
			calls := m.Dropout.Calls()

			m.Dropout.SetCalls(0)
			part, err := m.ForwardRows(tp, b, train, pos)
			if err != nil {
				t.Fatal(err)
			}
			if m.Dropout.Calls() != calls {
				t.Errorf("ForwardRows drew %d dropout seeds, Forward %d", m.Dropout.Calls(), calls)
			}
			if part.Pooled != nil || full.Pooled == nil {
				t.Errorf("pooled output: ForwardRows %v, Forward %v; want nil and set", part.Pooled != nil, full.Pooled != nil)
			}
			if s := part.Last.Shape(); len(s) != 2 || s[0] != len(pos) || s[1] != H || len(part.Rows) != len(pos) {
				t.Fatalf("ForwardRows' Last is %v with %d rows, want (%d, %d)", s, len(part.Rows), len(pos), H)
			}
			for i := 0; i < len(full.Hidden)-1; i++ {
				if d := firstDiff(part.Hidden[i].Value.Data(), full.Hidden[i].Value.Data()); d >= 0 {
					t.Fatalf("Hidden[%d] differs at element %d", i, d)
				}
			}
			fl, pl := full.Last.Value.Data(), part.Last.Value.Data()
			for r, p := range pos {
				if d := firstDiff(pl[r*H:(r+1)*H], fl[int(p)*H:(int(p)+1)*H]); d >= 0 {
					t.Fatalf("row %d (position %d) differs at element %d: %v, Forward %v", r, p, d, pl[r*H+d], fl[int(p)*H+d])
				}
			}

			m.Dropout.SetCalls(0)
			got, n, err := m.MLMLoss(tp, b, labels, train)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(pos) || got.Value.Item() != want.Value.Item() {
				t.Errorf("MLMLoss %v over %d positions, Forward then Loss %v over %d", got.Value.Item(), n, want.Value.Item(), len(pos))
			}
			t.Logf("%d of %d positions masked, loss %v", len(pos), b.B*b.T, got.Value.Item())
		})
	}
}

// firstDiff returns the first index where a and b differ (bitwise), or -1.
func firstDiff(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestForwardRowsGradients back-propagates the MLM loss through Forward (then MLMHead.Loss)
// and through MLMLoss (ForwardRows) under each dropout setting and compares every parameter's
// gradient: max |got − want| ≤ 1e-5·max|want| per tensor. They need not be bit-identical: the
// last layer's weight and bias gradients are sums over rows, B·T rows of which all but the
// masked ones are zero on the full path and only the masked rows on the other, and the GEMM
// may block the two sums differently (by row count, threads), so they may round differently.
// (At this size they happen to come out identical; the log says how many are.)
func TestForwardRowsGradients(t *testing.T) {
	for _, c := range rowsCases {
		t.Run(c.name, func(t *testing.T) {
			m, b, labels := rowsFixture(t, rowsConfig(), 3, 19, c.drop)
			m.Dropout.Row0 = c.row0
			train := c.drop > 0
			params := m.Params.List()
			grads := func(rows bool) [][]float32 {
				for _, p := range params {
					p.ZeroGrad()
				}
				m.Dropout.SetCalls(0)
				tp := autograd.NewTape()
				defer tp.Reset()
				var loss *autograd.Var
				if rows {
					var err error
					if loss, _, err = m.MLMLoss(tp, b, labels, train); err != nil {
						t.Fatal(err)
					}
				} else {
					out, err := m.Forward(tp, b, train)
					if err != nil {
						t.Fatal(err)
					}
					loss, _ = m.MLMHead().Loss(tp, out.Last, labels)
				}
				tp.Backward(loss)
				g := make([][]float32, len(params))
				for i, p := range params {
					g[i] = make([]float32, p.Value.Len())
					if p.Grad != nil {
						copy(g[i], p.Grad.Data())
					}
				}
				return g
			}
			want, got := grads(false), grads(true)
			same, worst := 0, 0.0
			for i, p := range params {
				scale, d := 0.0, 0.0
				for j, w := range want[i] {
					scale = max(scale, math.Abs(float64(w)))
					d = max(d, math.Abs(float64(got[i][j])-float64(w)))
				}
				if scale == 0 {
					if d != 0 || !isPooler(p.Name) {
						t.Errorf("%s: zero gradient on the full path, max |got| %g", p.Name, d)
					}
					continue
				}
				if d > 1e-5*scale {
					t.Errorf("%s: gradient differs by %g (max |grad| %g, relative %.2g)", p.Name, d, scale, d/scale)
				}
				if d == 0 {
					same++
				}
				worst = max(worst, d/scale)
			}
			t.Logf("%d of %d parameter gradients bit-identical; worst relative difference %.2g", same, len(params), worst)
		})
	}
}

func isPooler(name string) bool { return len(name) >= 6 && name[:6] == "pooler" }

// TestForwardRowsGradCheck checks MLMLoss's gradients (through ForwardRows, with hidden and
// attention dropout on; the draw counter is reset before each pass so every evaluation uses
// the same masks) by central differences, with GradCheck's usual tolerances, for the last
// layer's row-wise parameters, a first-layer query weight (reached through the gathered
// context and the attention on all rows) and the word embeddings (the inputs and the tied
// decoder).
func TestForwardRowsGradCheck(t *testing.T) {
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads = 12, 8, 2, 2
	cfg.IntermediateSize, cfg.MaxPositionEmbeddings = 12, 8
	m, b, labels := rowsFixture(t, cfg, 2, 5, 0.2)
	last := m.Layers[len(m.Layers)-1]
	vars := []**autograd.Var{
		&last.AttnOut.W, &last.AttnOut.B, &last.AttnLN.Gamma, &last.AttnLN.Beta,
		&last.Intermediate.W, &last.Intermediate.B, &last.Output.W, &last.OutLN.Gamma,
		&m.Layers[0].Query.W, &m.Word.W,
	}
	in := make([]*tensor.Tensor, len(vars))
	for i, v := range vars {
		in[i] = (*v).Value.Clone()
	}
	f := func(tp *autograd.Tape, v []*autograd.Var) *autograd.Var {
		for i, p := range vars {
			*p = v[i]
		}
		m.Dropout.SetCalls(0)
		loss, _, err := m.MLMLoss(tp, b, labels, true)
		if err != nil {
			t.Fatal(err)
		}
		return loss
	}
	if err := autograd.GradCheck(f, in, 1e-2, 2e-3, 2e-2); err != nil {
		t.Fatal(err)
	}
}
