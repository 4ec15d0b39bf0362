package tensor

import "fmt"

// Reshape returns a tensor with the same elements in a new shape. One dimension may be -1 and
// is then inferred. The result shares storage when t is contiguous and is a copy otherwise.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	sh := append([]int(nil), shape...)
	infer, n := -1, 1
	for i, d := range sh {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			panic(fmt.Sprintf("tensor: Reshape %v to %v: bad dimension %d", t.shape, shape, d))
		default:
			n *= d
		}
	}
	if infer >= 0 {
		if n == 0 || t.Len()%n != 0 {
			panic(fmt.Sprintf("tensor: Reshape %v to %v: cannot infer -1", t.shape, shape))
		}
		sh[infer] = t.Len() / n
		n *= sh[infer]
	}
	if n != t.Len() {
		panic(fmt.Sprintf("tensor: Reshape %v (%d elements) to %v", t.shape, t.Len(), shape))
	}
	src := t.Contiguous()
	return &Tensor{st: src.st, off: src.off, shape: sh, strides: contiguousStrides(sh)}
}

// Transpose returns a view with dimensions d0 and d1 swapped.
func (t *Tensor) Transpose(d0, d1 int) *Tensor {
	perm := make([]int, len(t.shape))
	for i := range perm {
		perm[i] = i
	}
	a, b := t.axis(d0), t.axis(d1)
	perm[a], perm[b] = perm[b], perm[a]
	return t.Permute(perm...)
}

// Permute returns a view whose dimension i is t's dimension perm[i].
func (t *Tensor) Permute(perm ...int) *Tensor {
	if len(perm) != len(t.shape) {
		panic(fmt.Sprintf("tensor: Permute %v of shape %v", perm, t.shape))
	}
	seen := make([]bool, len(perm))
	sh, st := make([]int, len(perm)), make([]int, len(perm))
	for i, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			panic(fmt.Sprintf("tensor: Permute %v is not a permutation of %d axes", perm, len(perm)))
		}
		seen[p] = true
		sh[i], st[i] = t.shape[p], t.strides[p]
	}
	return &Tensor{st: t.st, off: t.off, shape: sh, strides: st}
}

// Narrow returns a view of length elements of dimension dim starting at start.
func (t *Tensor) Narrow(dim, start, length int) *Tensor {
	d := t.axis(dim)
	if start < 0 || length < 0 || start+length > t.shape[d] {
		panic(fmt.Sprintf("tensor: Narrow(dim=%d, start=%d, length=%d) of shape %v", dim, start, length, t.shape))
	}
	sh := append([]int(nil), t.shape...)
	sh[d] = length
	return &Tensor{st: t.st, off: t.off + start*t.strides[d], shape: sh, strides: append([]int(nil), t.strides...)}
}

// Select returns the view at index i of dimension dim, with that dimension removed.
func (t *Tensor) Select(dim, i int) *Tensor {
	d := t.axis(dim)
	if i < 0 || i >= t.shape[d] {
		panic(fmt.Sprintf("tensor: Select(dim=%d, %d) of shape %v", dim, i, t.shape))
	}
	sh := append(append([]int(nil), t.shape[:d]...), t.shape[d+1:]...)
	st := append(append([]int(nil), t.strides[:d]...), t.strides[d+1:]...)
	return &Tensor{st: t.st, off: t.off + i*t.strides[d], shape: sh, strides: st}
}

// Unsqueeze returns a view with a dimension of size 1 inserted at dim.
func (t *Tensor) Unsqueeze(dim int) *Tensor {
	if dim < 0 {
		dim += len(t.shape) + 1
	}
	if dim < 0 || dim > len(t.shape) {
		panic(fmt.Sprintf("tensor: Unsqueeze(%d) of shape %v", dim, t.shape))
	}
	sh := append(append(append([]int(nil), t.shape[:dim]...), 1), t.shape[dim:]...)
	s := 1
	if dim < len(t.shape) {
		s = t.strides[dim] * t.shape[dim]
	}
	st := append(append(append([]int(nil), t.strides[:dim]...), s), t.strides[dim:]...)
	return &Tensor{st: t.st, off: t.off, shape: sh, strides: st}
}
