// Package tensor provides mtbert's n-dimensional arrays: a float32 host storage plus shape and
// strides.
//
// A Tensor is a view: Reshape of a contiguous tensor, Transpose, Permute, Narrow and Select
// share the storage of their source and copy nothing. Kernels want contiguous memory, so
// Contiguous returns the tensor itself when it already is, else a packed copy.
//
// Every tensor is float32 in host memory. The GPU path (package bert/cudabert) keeps its
// weights and activations in buffers of package kernels/cuda, float32 or bf16, and copies to
// and from tensors' host slices; tensors carry no dtype or device field, because no tensor is
// ever anything but host float32.
package tensor
