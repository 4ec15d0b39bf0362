package kernels

import (
	"testing"
	"time"
)

func TestMeasurePeak(t *testing.T) {
	for _, r := range MeasurePeak(1, 300*time.Millisecond) {
		if r.GFLOPS <= 0 {
			t.Errorf("%s: peak %v GFLOP/s", r.ISA, r.GFLOPS)
		}
		t.Logf("%s: %.1f GFLOP/s on one goroutine", r.ISA, r.GFLOPS)
	}
}
