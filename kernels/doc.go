// Package kernels owns every numeric kernel of mtbert and the seam between backends.
//
// Kernels work on flat buffers with shapes given as ints and row-major strides; they know
// nothing of tensors or autograd. Each kernel has a plain-loop CPU reference, a fast CPU path
// where a profile shows it matters (Go, and Go assembly chosen at run time from the CPU's
// features), and, later, a GPU launch. Backward kernels accumulate (+=) into gradients.
//
// SGEMM is the hot spot: see Sgemm for the blocking scheme and GemmPath for the micro-kernel in
// use. Setting MTBERT_CPU=generic in the environment forces the pure-Go path everywhere.
package kernels
