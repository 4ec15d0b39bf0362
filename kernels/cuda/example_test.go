package cuda_test

import (
	"fmt"
	"log"

	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/kernels/cuda"
)

// Example opens the device named by -device / $MTBERT_DEVICE ("auto" here), computes
// y = 2·x + y on it and copies the result back. Without a GPU (or the emulator in
// $MTBERT_CUDA_LIB) it says why and stops.
func Example() {
	req, err := kernels.ParseDevice("auto")
	if err != nil {
		log.Fatal(err)
	}
	sel, err := cuda.Select(req)
	if err != nil {
		log.Fatal(err)
	}
	if sel.Ctx == nil {
		fmt.Println("no GPU:", sel.Note != "")
		return
	}
	c := sel.Ctx
	x, _ := c.Alloc(4 * 4)
	y, _ := c.Alloc(4 * 4)
	defer x.Free()
	defer y.Free()
	s := c.Stream()
	_ = cuda.Upload(s, x, []float32{1, 2, 3, 4})
	_ = s.FillF32(y, 0.5, 4)
	_ = s.AxpyF32(y, x, 2, 4)
	out := make([]float32, 4)
	if err := cuda.Download(s, out, y); err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
}
