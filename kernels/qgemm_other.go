//go:build !amd64

package kernels

func archQgemms() []*qgemmKernel { return nil }

func archQuantizeRow(q []int8, x []float32) float32 { return quantizeRowScalar(q, x) }
