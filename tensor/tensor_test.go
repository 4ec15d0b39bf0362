package tensor

import (
	"math"
	"strings"
	"testing"
)

func seq(shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data() {
		t.Data()[i] = float32(i)
	}
	return t
}

func TestViewsShareStorage(t *testing.T) {
	x := seq(2, 3, 4)
	tr := x.Transpose(0, 2) // (4, 3, 2)
	if got := tr.Shape(); got[0] != 4 || got[1] != 3 || got[2] != 2 {
		t.Fatalf("transpose shape %v", got)
	}
	if tr.IsContiguous() {
		t.Fatal("transposed view reported contiguous")
	}
	// x[1][2][3] = 1*12 + 2*4 + 3 = 23 is tr[3][2][1].
	if tr.At(3, 2, 1) != 23 {
		t.Fatalf("tr[3][2][1] = %v, want 23", tr.At(3, 2, 1))
	}
	tr.Set(-1, 3, 2, 1)
	if x.At(1, 2, 3) != -1 {
		t.Fatal("write through a transposed view did not reach the storage")
	}
	n := x.Narrow(2, 1, 2) // (2, 3, 2): columns 1 and 2
	s := x.Select(1, 2)    // (2, 4): row 2 of each matrix
	if n.At(1, 0, 1) != 14 || s.At(1, 0) != 20 {
		t.Fatalf("narrow %v select %v", n.At(1, 0, 1), s.At(1, 0))
	}
	// Contiguous packs row-major.
	c := n.Contiguous().Data()
	want := []float32{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}
	for i := range want {
		if c[i] != want[i] {
			t.Fatalf("Contiguous(narrow) = %v, want %v", c, want)
		}
	}
	if r := x.Reshape(6, -1); r.Dim(1) != 4 || &r.Data()[0] != &x.Data()[0] {
		t.Fatal("Reshape of a contiguous tensor copied or inferred wrongly")
	}
	u := x.Unsqueeze(1)
	if u.Rank() != 4 || u.Dim(1) != 1 || u.At(1, 0, 2, 3) != -1 {
		t.Fatalf("Unsqueeze: %v", u.Shape())
	}
	p := x.Permute(2, 0, 1)
	if p.At(3, 1, 2) != -1 || p.At(0, 1, 2) != 20 || p.Contiguous().Reshape(-1).At(23) != -1 {
		t.Fatalf("Permute wrong: %v %v", p.At(3, 1, 2), p.Contiguous().Reshape(-1).At(23))
	}
}

func TestCopyAndAccumulate(t *testing.T) {
	x := seq(3, 4)
	dst := New(4, 3)
	dst.CopyFrom(x.Transpose(0, 1))
	if dst.At(2, 1) != 6 {
		t.Fatalf("CopyFrom transposed: %v", dst.At(2, 1))
	}
	acc := make([]float32, 12)
	x.Transpose(0, 1).AddInto(acc)
	x.Transpose(0, 1).AddInto(acc)
	if acc[5] != 2*x.At(2, 1) {
		t.Fatalf("AddInto: %v", acc[5])
	}
	v := x.Narrow(1, 1, 2)
	v.AddFrom([]float32{10, 10, 10, 10, 10, 10})
	if x.At(2, 2) != 20 || x.At(2, 0) != 8 {
		t.Fatalf("AddFrom through a view: %v %v", x.At(2, 2), x.At(2, 0))
	}
}

func TestShapeErrors(t *testing.T) {
	for _, c := range []struct {
		want string
		f    func()
	}{
		{"Reshape [2 3] (6 elements) to [4 2]", func() { New(2, 3).Reshape(4, 2) }},
		{"Narrow(dim=1, start=2, length=2) of shape [2 3]", func() { New(2, 3).Narrow(1, 2, 2) }},
		{"index [2 0] out of range for shape [2 3]", func() { New(2, 3).At(2, 0) }},
		{"FromSlice: len(data)=5 but shape [2 3] holds 6", func() { FromSlice(make([]float32, 5), 2, 3) }},
		{"Data of a non-contiguous view", func() { New(2, 3).Transpose(0, 1).Data() }},
		{"is not a permutation", func() { New(2, 3).Permute(0, 0) }},
	} {
		func() {
			defer func() {
				r, _ := recover().(string)
				if !strings.Contains(r, c.want) {
					t.Errorf("panic %q, want %q", r, c.want)
				}
			}()
			c.f()
		}()
	}
}

// TestInitialisers checks determinism and the first two moments (n = 200k, so the sample
// mean's standard error is std/447) and the truncation bounds.
func TestInitialisers(t *testing.T) {
	const n = 200_000
	a := New(n).FillNormal(NewRNG(5), 0.5, 0.02)
	b := New(n).FillNormal(NewRNG(5), 0.5, 0.02)
	for i := range a.Data() {
		if a.Data()[i] != b.Data()[i] {
			t.Fatal("same seed, different values")
		}
	}
	mean, sd := moments(a.Data())
	if math.Abs(mean-0.5) > 5*0.02/447 || math.Abs(sd-0.02) > 0.02*0.01 {
		t.Fatalf("normal(0.5, 0.02): mean %g sd %g", mean, sd)
	}
	tn := New(n).FillTruncNormal(NewRNG(6), 0, 1, -2, 2)
	for _, v := range tn.Data() {
		if v < -2 || v > 2 {
			t.Fatalf("truncated normal gave %v outside [-2, 2]", v)
		}
	}
	// Var of N(0,1) truncated to [-2,2] = 1 − 2·2·φ(2)/(Φ(2)−Φ(−2)) = 0.7737.
	if _, sd := moments(tn.Data()); math.Abs(sd*sd-0.7737) > 0.01 {
		t.Fatalf("truncated normal variance %g, want 0.7737", sd*sd)
	}
	u := New(n).FillUniform(NewRNG(7), -1, 3)
	mean, sd = moments(u.Data())
	if math.Abs(mean-1) > 0.02 || math.Abs(sd-4/math.Sqrt(12)) > 0.01 {
		t.Fatalf("uniform(-1, 3): mean %g sd %g", mean, sd)
	}
}

func moments(x []float32) (mean, sd float64) {
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	for _, v := range x {
		sd += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(sd / float64(len(x)))
}

func TestPoolReuses(t *testing.T) {
	p := NewPool()
	a := p.Get(3, 4)
	a.Fill(7)
	buf := &a.Data()[0]
	p.Put(a)
	b := p.Get(12)
	if &b.Data()[0] != buf || b.Data()[5] != 0 || p.Allocs != 1 {
		t.Fatalf("pool did not reuse a zeroed buffer (allocs %d)", p.Allocs)
	}
}

// TestPoolBoundedUnderVaryingShapes asks for buffers of 200 different sizes, one "step" at a
// time: what the pool keeps must stay within twice the largest step.
func TestPoolBoundedUnderVaryingShapes(t *testing.T) {
	p := NewPool()
	peak := 0
	for step := 1; step <= 200; step++ {
		var ts []*Tensor
		total := 0
		for k := 1; k <= 5; k++ {
			n := step * 1000 * k
			ts = append(ts, p.Get(n))
			total += sizeClass(n)
		}
		peak = max(peak, total)
		for _, x := range ts {
			p.Put(x)
		}
		if r := p.Retained(); r > 2*peak {
			t.Fatalf("step %d: pool retains %d elements, more than twice the peak %d", step, r, peak)
		}
	}
	// Sizes in one class share buffers.
	q := NewPool()
	q.Put(q.Get(1000))
	q.Get(1010)
	if q.Allocs != 1 {
		t.Fatalf("sizes 1000 and 1010 did not share a class buffer (%d allocations)", q.Allocs)
	}
	for _, n := range []int{1, 64, 65, 100, 1000, 1 << 20, 1<<20 + 1} {
		c := sizeClass(n)
		if c < n || (n > 64 && float64(c-n) > 0.125*float64(n)) || sizeClass(c) != c {
			t.Fatalf("sizeClass(%d) = %d", n, c)
		}
	}
}
