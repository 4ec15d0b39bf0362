// Package cudabert runs a bert.Model's encoder on a CUDA device with the kernels of
// kernels/cuda: Encoder for inference, Trainer for token-tagging training steps with the fused
// AdamW kernel, and Encoder.Gradients to check the GPU backward against the CPU's autograd.
// Package bert itself imports no CUDA.
//
// Tests run on the host emulation of the driver (kernels/cuda.TestLibrary) when no GPU is
// present, and on cuda:0 with MTBERT_CUDA_REAL=1.
package cudabert
