package tensor

import (
	"fmt"
	"strings"
)

// Storage is the memory behind one or more tensors.
type Storage struct {
	// F32 holds the elements: tensors are float32 in host memory (GPU memory is managed by
	// package kernels/cuda's buffers, not by tensors).
	F32 []float32
}

// Tensor is a strided view of a Storage.
type Tensor struct {
	st      *Storage
	off     int
	shape   []int
	strides []int
}

// Numel returns the number of elements of a tensor with the given shape.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// contiguousStrides returns the row-major strides of shape.
func contiguousStrides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// New returns a zeroed host float32 tensor of the given shape.
func New(shape ...int) *Tensor {
	n := Numel(shape)
	return FromSlice(make([]float32, n), shape...)
}

// FromSlice wraps data (not copied) as a contiguous tensor of the given shape.
func FromSlice(data []float32, shape ...int) *Tensor {
	if n := Numel(shape); n != len(data) {
		panic(fmt.Sprintf("tensor: FromSlice: len(data)=%d but shape %v holds %d", len(data), shape, n))
	}
	sh := append([]int(nil), shape...)
	return &Tensor{
		st:      &Storage{F32: data},
		shape:   sh,
		strides: contiguousStrides(sh),
	}
}

// Shape returns the tensor's shape. The caller must not modify it.
func (t *Tensor) Shape() []int { return t.shape }

// Strides returns the tensor's strides in elements. The caller must not modify them.
func (t *Tensor) Strides() []int { return t.strides }

// Offset returns the index of the tensor's first element in its storage.
func (t *Tensor) Offset() int { return t.off }

// Storage returns the storage behind the tensor.
func (t *Tensor) Storage() *Storage { return t.st }

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int { return t.shape[t.axis(i)] }

// Len returns the number of elements.
func (t *Tensor) Len() int { return Numel(t.shape) }

func (t *Tensor) axis(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	if i < 0 || i >= len(t.shape) {
		panic(fmt.Sprintf("tensor: axis %d out of range for shape %v", i, t.shape))
	}
	return i
}

// IsContiguous reports whether the elements are laid out row-major without gaps.
func (t *Tensor) IsContiguous() bool {
	acc := 1
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.strides[i] != acc {
			return false
		}
		acc *= t.shape[i]
	}
	return true
}

// Data returns the elements of a contiguous host float32 tensor as a slice that aliases the
// storage. It panics for a non-contiguous view: call Contiguous first.
func (t *Tensor) Data() []float32 {
	if !t.IsContiguous() {
		panic(fmt.Sprintf("tensor: Data of a non-contiguous view (shape %v strides %v); call Contiguous", t.shape, t.strides))
	}
	return t.st.F32[t.off : t.off+t.Len()]
}

// Contiguous returns t when it is contiguous, else a packed copy.
func (t *Tensor) Contiguous() *Tensor {
	if t.IsContiguous() {
		return t
	}
	return t.Clone()
}

// Clone returns a contiguous copy with its own storage.
func (t *Tensor) Clone() *Tensor {
	out := New(t.shape...)
	t.copyTo(out.st.F32)
	return out
}

// ToHost returns a host copy of the tensor's elements in row-major order.
func (t *Tensor) ToHost() []float32 {
	out := make([]float32, t.Len())
	t.copyTo(out)
	return out
}

// CopyFrom copies src's elements into t; the shapes must hold the same number of elements.
func (t *Tensor) CopyFrom(src *Tensor) {
	if t.Len() != src.Len() {
		panic(fmt.Sprintf("tensor: CopyFrom: shape %v into shape %v", src.shape, t.shape))
	}
	if t.IsContiguous() {
		src.copyTo(t.Data())
		return
	}
	tmp := src.Contiguous().Data()
	i := 0
	t.each(func(j int) { t.st.F32[j] = tmp[i]; i++ })
}

// AddInto accumulates t's elements, in row-major order, into dst: dst[i] += t[i].
func (t *Tensor) AddInto(dst []float32) {
	if len(dst) != t.Len() {
		panic(fmt.Sprintf("tensor: AddInto: %d elements into %d", t.Len(), len(dst)))
	}
	i := 0
	src := t.st.F32
	t.each(func(j int) { dst[i] += src[j]; i++ })
}

// AddFrom accumulates src, in row-major order, into the elements of t (which may be a view):
// t[i] += src[i].
func (t *Tensor) AddFrom(src []float32) {
	if len(src) != t.Len() {
		panic(fmt.Sprintf("tensor: AddFrom: %d elements into shape %v", len(src), t.shape))
	}
	i := 0
	dst := t.st.F32
	t.each(func(j int) { dst[j] += src[i]; i++ })
}

// copyTo writes the elements of t in row-major order into dst.
func (t *Tensor) copyTo(dst []float32) {
	if t.IsContiguous() {
		copy(dst, t.st.F32[t.off:t.off+t.Len()])
		return
	}
	i := 0
	src := t.st.F32
	t.each(func(j int) { dst[i] = src[j]; i++ })
}

// each calls fn with the storage index of every element in row-major order.
func (t *Tensor) each(fn func(j int)) {
	n := t.Len()
	if n == 0 {
		return
	}
	r := len(t.shape)
	if r == 0 {
		fn(t.off)
		return
	}
	idx := make([]int, r)
	last := r - 1
	inner, innerStride := t.shape[last], t.strides[last]
	pos := t.off
	for {
		p := pos
		for k := 0; k < inner; k++ {
			fn(p)
			p += innerStride
		}
		d := last - 1
		for ; d >= 0; d-- {
			idx[d]++
			pos += t.strides[d]
			if idx[d] < t.shape[d] {
				break
			}
			pos -= idx[d] * t.strides[d]
			idx[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

// index returns the storage index of the element at idx.
func (t *Tensor) index(idx []int) int {
	if len(idx) != len(t.shape) {
		panic(fmt.Sprintf("tensor: index %v for shape %v", idx, t.shape))
	}
	p := t.off
	for i, v := range idx {
		if v < 0 || v >= t.shape[i] {
			panic(fmt.Sprintf("tensor: index %v out of range for shape %v", idx, t.shape))
		}
		p += v * t.strides[i]
	}
	return p
}

// At returns the element at idx.
func (t *Tensor) At(idx ...int) float32 { return t.st.F32[t.index(idx)] }

// Set stores v at idx.
func (t *Tensor) Set(v float32, idx ...int) { t.st.F32[t.index(idx)] = v }

// Item returns the only element of a one-element tensor.
func (t *Tensor) Item() float32 {
	if t.Len() != 1 {
		panic(fmt.Sprintf("tensor: Item of shape %v", t.shape))
	}
	return t.st.F32[t.off]
}

// String prints the shape and, for small tensors, the values.
func (t *Tensor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tensor%v", t.shape)
	if t.Len() <= 16 {
		fmt.Fprintf(&b, "%v", t.ToHost())
	}
	return b.String()
}

// SameShape reports whether a and b have equal shapes.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
