package kernels

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

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
	I8 // int8 weights of a quantised checkpoint (see QuantizedB)
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
	case I8:
		return 1
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
	case I8:
		return "I8"
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
	case "I8":
		return I8, nil
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

// DeviceEnv is the environment variable that chooses the device when no -device flag is
// given: it takes the same values as ParseDevice.
const DeviceEnv = "MTBERT_DEVICE"

// DeviceRequest is a parsed device choice, before any driver is probed.
type DeviceRequest struct {
	// Device is the device asked for: the CPU, or CUDA device Index ("cuda" is cuda:0).
	Device
	// Auto marks "auto": CUDA device 0 when a usable driver and device are present, else the
	// CPU with a note saying why.
	Auto bool
	// From says where the text came from: "flag", DeviceEnv or "default".
	From string
}

// String returns the canonical spelling of the request: "cpu", "cuda:N" or "auto".
func (r DeviceRequest) String() string {
	if r.Auto {
		return "auto"
	}
	return r.Device.String()
}

// ParseDevice parses a device name: "cpu", "cuda" (device 0), "cuda:N" or "auto". Case and
// surrounding spaces are ignored. It probes nothing: the CUDA side is checked when the device
// is opened (package kernels/cuda).
func ParseDevice(s string) (DeviceRequest, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "cpu":
		return DeviceRequest{Device: Host}, nil
	case "cuda":
		return DeviceRequest{Device: Device{Kind: CUDA}}, nil
	case "auto":
		return DeviceRequest{Device: Device{Kind: CUDA}, Auto: true}, nil
	}
	if rest, ok := strings.CutPrefix(t, "cuda:"); ok {
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 || rest[0] == '+' {
			return DeviceRequest{}, fmt.Errorf("kernels: bad device %q: the index after \"cuda:\" must be a non-negative integer", s)
		}
		return DeviceRequest{Device: Device{Kind: CUDA, Index: n}}, nil
	}
	return DeviceRequest{}, fmt.Errorf("kernels: unknown device %q: want cpu, cuda, cuda:N or auto", s)
}

// DefaultDevice is the device used when neither the flag nor DeviceEnv names one.
const DefaultDevice = "cpu"

// ResolveDevice parses the -device flag value; when it is empty it reads DeviceEnv from the
// environment, and when that is empty too it uses DefaultDevice. From records which applied,
// and errors name the source.
func ResolveDevice(flag string) (DeviceRequest, error) {
	return resolveDevice(flag, os.Getenv(DeviceEnv))
}

func resolveDevice(flag, env string) (DeviceRequest, error) {
	src, from := flag, "flag"
	switch {
	case strings.TrimSpace(flag) != "":
	case strings.TrimSpace(env) != "":
		src, from = env, DeviceEnv
	default:
		src, from = DefaultDevice, "default"
	}
	r, err := ParseDevice(src)
	if err != nil {
		if from == DeviceEnv {
			return r, fmt.Errorf("%v (from %s)", err, DeviceEnv)
		}
		return r, err
	}
	r.From = from
	return r, nil
}
