package cudamtl_test

import (
	"testing"

	"github.com/mtbert/mtbert/kernels/cuda/cudatest"
	"github.com/mtbert/mtbert/mtl/cudamtl"
	"github.com/mtbert/mtbert/mtl/train"
)

// TestWarmStepsAllocateNothing: once two rounds of the four-task run have been stepped (every
// head kind, each batch shape of the round seen), the next rounds take no memory from the
// driver: the caching allocator serves every pass's buffers (its statistics say so), and
// every block of a step is returned.
func TestWarmStepsAllocateNothing(t *testing.T) {
	c := cudatest.Open(t)
	r := fourTasks(t, func(c *train.Config) { c.Training.Steps = 100 })
	s, err := cudamtl.New(c, r.Trainer, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r.Trainer.Device = s
	step := func(n int) {
		for range n {
			if _, err := r.Trainer.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	step(8)
	a := c.Allocator().Stats()
	step(8)
	b := c.Allocator().Stats()
	t.Logf("after 8 warm-up steps: %s", a)
	t.Logf("after 8 more: %s", b)
	if b.DriverAllocs != a.DriverAllocs || b.Live != a.Live {
		t.Errorf("warm steps: %d driver allocations and %d live blocks, want %d and %d", b.DriverAllocs, b.Live, a.DriverAllocs, a.Live)
	}
	if b.Allocs == a.Allocs {
		t.Error("no allocation at all: the test measures nothing")
	}
}
