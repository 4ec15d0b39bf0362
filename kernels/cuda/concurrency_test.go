package cuda

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentUse drives one context from many goroutines at once, each on its own stream:
// every call is funnelled to the driver thread, and each goroutine must see its own results.
func TestConcurrentUse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		const workers, rounds, n = 8, 20, 1027
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				s, err := c.NewStream()
				if err != nil {
					errs <- err
					return
				}
				defer s.Destroy()
				got := make([]float32, n)
				for r := 0; r < rounds; r++ {
					x, err := c.Allocator().Alloc(4*n, s)
					if err != nil {
						errs <- err
						return
					}
					v := float32(w*1000 + r)
					if err := s.FillF32(x, v, n); err != nil {
						errs <- err
						return
					}
					if err := s.AxpyF32(x, x, 1, n); err != nil {
						errs <- err
						return
					}
					if err := Download(s, got, x); err != nil {
						errs <- err
						return
					}
					x.Free()
					for i, g := range got {
						if g != 2*v {
							errs <- fmt.Errorf("worker %d round %d: element %d = %v, want %v", w, r, i, g, 2*v)
							return
						}
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
