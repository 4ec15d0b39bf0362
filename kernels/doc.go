// Package kernels owns the CPU kernels of mtbert and the device seam between backends.
//
// Kernels work on flat buffers with shapes given as ints and row-major strides; they know
// nothing of tensors or autograd. Each kernel has a plain-loop CPU reference and, where a
// profile shows it matters, a fast CPU path (Go, and Go assembly chosen at run time from the
// CPU's features). Backward kernels accumulate (+=) into gradients. The files say what they
// hold: gemm*.go (SGEMM), linear.go, attention.go, layernorm.go, softmax.go, activation.go
// (GELU, tanh), dropout.go, vector.go (axpy, dot, scale, row sums), adam.go, mathf.go
// (float32 exp, erf, tanh), threads.go (ParallelFor).
//
// The GPU kernels are not here: CUDA C sources, their committed PTX and the launches live in
// the sub-package kernels/cuda, on buffers of device memory; its tests compare them with the
// CPU references here. This package holds what both sides share: DType (the element
// types of checkpoints and GPU buffers) and Device, ParseDevice and ResolveDevice (the
// -device choice, resolved before any driver is probed).
//
// SGEMM is the hot spot: see Sgemm for the blocking scheme and GemmPath for the micro-kernel in
// use. Setting MTBERT_CPU=generic in the environment forces the pure-Go path everywhere.
package kernels
