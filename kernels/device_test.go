package kernels

import (
	"strings"
	"testing"
)

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want DeviceRequest
		str  string
	}{
		{"cpu", DeviceRequest{Device: Host}, "cpu"},
		{" CPU ", DeviceRequest{Device: Host}, "cpu"},
		{"cuda", DeviceRequest{Device: Device{Kind: CUDA}}, "cuda:0"},
		{"cuda:0", DeviceRequest{Device: Device{Kind: CUDA}}, "cuda:0"},
		{"cuda:3", DeviceRequest{Device: Device{Kind: CUDA, Index: 3}}, "cuda:3"},
		{"CUDA:12", DeviceRequest{Device: Device{Kind: CUDA, Index: 12}}, "cuda:12"},
		{"auto", DeviceRequest{Device: Device{Kind: CUDA}, Auto: true}, "auto"},
	} {
		got, err := ParseDevice(tc.in)
		if err != nil {
			t.Errorf("ParseDevice(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want || got.String() != tc.str {
			t.Errorf("ParseDevice(%q) = %+v (%s), want %+v (%s)", tc.in, got, got, tc.want, tc.str)
		}
	}
	for _, tc := range []struct{ in, msg string }{
		{"", "unknown device"},
		{"gpu", "unknown device"},
		{"cuda:", "non-negative integer"},
		{"cuda:-1", "non-negative integer"},
		{"cuda:+1", "non-negative integer"},
		{"cuda:x", "non-negative integer"},
		{"cuda0", "unknown device"},
		{"tpu", "want cpu, cuda, cuda:N or auto"},
	} {
		_, err := ParseDevice(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseDevice(%q) error = %v, want it to contain %q", tc.in, err, tc.msg)
		}
	}
}

func TestResolveDevice(t *testing.T) {
	for _, tc := range []struct {
		flag, env string
		want      string
		from      string
	}{
		{"", "", "cpu", "default"},
		{"", "cuda:1", "cuda:1", DeviceEnv},
		{"cpu", "cuda:1", "cpu", "flag"},
		{"auto", "", "auto", "flag"},
		{"  ", " auto ", "auto", DeviceEnv},
	} {
		got, err := resolveDevice(tc.flag, tc.env)
		if err != nil {
			t.Errorf("resolveDevice(%q, %q): %v", tc.flag, tc.env, err)
			continue
		}
		if got.String() != tc.want || got.From != tc.from {
			t.Errorf("resolveDevice(%q, %q) = %s from %s, want %s from %s", tc.flag, tc.env, got, got.From, tc.want, tc.from)
		}
	}
	_, err := resolveDevice("", "cuda:x")
	if err == nil || !strings.Contains(err.Error(), DeviceEnv) {
		t.Errorf("bad %s value: error %v does not name the variable", DeviceEnv, err)
	}
	t.Setenv(DeviceEnv, "cuda:2")
	if r, err := ResolveDevice(""); err != nil || r.String() != "cuda:2" || r.From != DeviceEnv {
		t.Errorf("ResolveDevice with %s=cuda:2: %v, %v", DeviceEnv, r, err)
	}
}
