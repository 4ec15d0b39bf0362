// Package cudabert runs a bert.Model's encoder on a CUDA device with the kernels of
// kernels/cuda: Encoder for inference (a bert.Encoder, so that the multitask layer takes it
// without importing CUDA), Trainer for token-tagging training steps with the fused AdamW
// kernel, Encoder.Gradients to check the GPU backward against the CPU's autograd, and
// Encoder.Trace to compare the hidden state after every stage with bert.Model.Trace.
// Package bert itself imports no CUDA.
//
// Tests run on the host emulation of the driver (kernels/cuda.TestLibrary) when no GPU is
// present, and on cuda:0 with MTBERT_CUDA_REAL=1.
package cudabert
