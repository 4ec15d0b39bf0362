package cuda

import (
	"fmt"
	"math"

	"github.com/mtbert/mtbert/kernels"
)

// AdamTensor is one parameter tensor of a multi-tensor AdamW step: float32 master weights P,
// gradient G and moments M, V of N elements, an optional bf16 copy PBF16 refreshed after the
// update, and whether weight decay applies.
type AdamTensor struct {
	P, G, M, V Buffer
	PBF16      Buffer
	N          int
	Decay      bool
}

// AdamTable is the device-side tensor table of src/reduce.cu's multi-tensor kernels: one row
// of 8 uint64 per tensor. Build it once per model and reuse it every step.
type AdamTable struct {
	buf     Buffer
	n       int
	maxElem int
}

// NewAdamTable uploads the tensor table for ts.
func (c *Context) NewAdamTable(ts []AdamTensor) (*AdamTable, error) {
	if len(ts) == 0 {
		panic("cuda: NewAdamTable: no tensors")
	}
	rows := make([]uint64, 8*len(ts))
	t := &AdamTable{n: len(ts)}
	for i, x := range ts {
		op := fmt.Sprintf("NewAdamTable tensor %d", i)
		need(op, "P", x.P, x.N, 4, false)
		need(op, "G", x.G, x.N, 4, false)
		need(op, "M", x.M, x.N, 4, false)
		need(op, "V", x.V, x.N, 4, false)
		need(op, "PBF16", x.PBF16, x.N, 2, true)
		r := rows[8*i : 8*i+8]
		r[0], r[1], r[2], r[3], r[4] = uint64(x.P.Ptr), uint64(x.G.Ptr), uint64(x.M.Ptr), uint64(x.V.Ptr), uint64(x.PBF16.Ptr)
		r[5], r[6] = uint64(x.N), uint64(b2i(x.Decay))
		t.maxElem = max(t.maxElem, x.N)
	}
	var err error
	if t.buf, err = c.Alloc(8 * len(rows)); err != nil {
		return nil, err
	}
	if err := Upload(nil, t.buf, rows); err != nil {
		t.buf.Free()
		return nil, err
	}
	return t, nil
}

// Free releases the table's device memory.
func (t *AdamTable) Free() { t.buf.Free() }

// adamGrid is the grid.x of the multi-tensor kernels: enough blocks of 256 for the largest
// tensor, within KERNELS.md's recommended 64..512.
func (t *AdamTable) adamGrid() int { return min(max(ceilDiv(t.maxElem, 256*8), 64), 512) }

// GradNorm writes the L2 norm of all the table's gradients to out[0].
func (s *Stream) GradNorm(out Buffer, t *AdamTable) error {
	need("GradNorm", "out", out, 1, 4, false)
	g := t.adamGrid()
	part, err := s.c.alloc.Alloc(4*g*t.n, s)
	if err != nil {
		return err
	}
	defer part.Free()
	if err := s.launch("reduce", "mt_multi_sumsq_partial_f32", Dim3{g, t.n, 1}, Dim3{256, 1, 1}, 0, Ptr(part), Ptr(t.buf), I32(t.n), I32(1)); err != nil {
		return err
	}
	return s.launch("reduce", "mt_reduce_final_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, 0, Ptr(out), Ptr(part), I32(g*t.n), I32(2))
}

// AdamW applies one Adam step (kernels.AdamStep, operation for operation in float32: decoupled
// weight decay when hp.Decoupled, AdamW; else Adam's L2 term) to every tensor of the table:
// gradients are multiplied by gradScale
// and, when gnorm is a buffer holding the global gradient norm and maxNorm > 0, clipped by
// min(1, maxNorm/(gnorm+1e-6)). Tensors marked Decay get hp.WeightDecay.
func (s *Stream) AdamW(t *AdamTable, hp kernels.AdamParams, gradScale float32, gnorm Buffer, maxNorm float32) error {
	if hp.Step < 1 {
		panic(fmt.Sprintf("cuda: AdamW: step %d, want >= 1", hp.Step))
	}
	need("AdamW", "gnorm", gnorm, 1, 4, true)
	bc1 := 1 - math.Pow(hp.Beta1, float64(hp.Step))
	bc2 := 1 - math.Pow(hp.Beta2, float64(hp.Step))
	w1 := float32(1 - hp.Beta1)
	b2 := float32(hp.Beta2)
	w2 := float32(1 - hp.Beta2)
	eps := float32(hp.Eps)
	decay, l2 := float32(1-hp.LR*hp.WeightDecay), float32(0)
	if !hp.Decoupled {
		decay, l2 = 1, float32(hp.WeightDecay)
	}
	negStep := -float32(hp.LR / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	return s.launch("reduce", "mt_adamw_multi_f32", Dim3{t.adamGrid(), t.n, 1}, Dim3{256, 1, 1}, 0,
		Ptr(t.buf), I32(t.n), F32(w1), F32(b2), F32(w2), F32(eps), F32(decay), F32(l2), F32(negStep), F32(bc2Sqrt),
		F32(gradScale), Ptr(gnorm), F32(maxNorm))
}
