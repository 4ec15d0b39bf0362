package kernels

func archQgemm() *qgemmKernel { return nil }
