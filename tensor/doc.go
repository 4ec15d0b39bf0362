// Package tensor provides mtbert's n-dimensional arrays: a storage buffer plus shape, strides,
// an element type and a device.
//
// A Tensor is a view: Reshape of a contiguous tensor, Transpose, Permute, Narrow and Select
// share the storage of their source and copy nothing. Kernels want contiguous memory, so
// Contiguous returns the tensor itself when it already is, else a packed copy.
//
// Arithmetic runs on float32 host memory today; the dtype and device fields are on every
// tensor so that a bf16 GPU tensor slots in behind the kernels seam without changing callers.
// Every operation that cannot handle a tensor's device or dtype panics with a message that
// names it, rather than guessing.
package tensor
