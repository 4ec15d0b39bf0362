package kernels

import "fmt"

// DType is the element type of a buffer.
type DType uint8

// The element types mtbert stores. Arithmetic on the CPU is float32; the others exist for
// checkpoints on disk (F16, BF16, I64) and for GPU activations (BF16).
const (
	F32 DType = iota
	BF16
	F16
	I64
	I32
)

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case BF16, F16:
		return 2
	case I64:
		return 8
	}
	panic(fmt.Sprintf("kernels: unknown dtype %d", d))
}

// String returns the safetensors name of the type ("F32", "BF16", ...).
func (d DType) String() string {
	switch d {
	case F32:
		return "F32"
	case BF16:
		return "BF16"
	case F16:
		return "F16"
	case I64:
		return "I64"
	case I32:
		return "I32"
	}
	return fmt.Sprintf("DType(%d)", d)
}

// ParseDType maps a safetensors dtype name to a DType.
func ParseDType(s string) (DType, error) {
	switch s {
	case "F32":
		return F32, nil
	case "BF16":
		return BF16, nil
	case "F16":
		return F16, nil
	case "I64":
		return I64, nil
	case "I32":
		return I32, nil
	}
	return 0, fmt.Errorf("kernels: unsupported dtype %q", s)
}

// DeviceKind says which backend owns a buffer.
type DeviceKind uint8

// The backends. CPU is always present; CUDA is loaded at run time through the driver API.
const (
	CPU DeviceKind = iota
	CUDA
)

// Device names one backend instance: the CPU, or CUDA device Index.
type Device struct {
	Kind  DeviceKind
	Index int
}

// Host is the CPU device.
var Host = Device{Kind: CPU}

// String returns "cpu" or "cuda:N".
func (d Device) String() string {
	if d.Kind == CUDA {
		return fmt.Sprintf("cuda:%d", d.Index)
	}
	return "cpu"
}
