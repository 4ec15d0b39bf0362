package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/mtbert/mtbert/kernels"
)

// Conformance of src/elementwise.cu and src/reduce.cu.

func TestFillAxpyScale(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		for _, n := range sizes {
			x := randF32(uint64(n), n, -2, 2)
			y := randF32(uint64(n)+1, n, -2, 2)
			xb, yb := upload(t, c, x, 5), upload(t, c, y, 5)
			// Fill.
			fb := upload(t, c, make([]float32, n), 5)
			check(t, s.FillF32(fb, -1.25, n))
			want := make([]float32, n)
			for i := range want {
				want[i] = -1.25
			}
			exact(t, fmt.Sprintf("FillF32 n=%d", n), download[float32](t, fb, n), want)
			checkSentinel(t, fmt.Sprintf("FillF32 n=%d", n), fb, n, 5, 4)
			// Axpy: y += a·x as fmaf(a, x, y): the float64 value of a·x is exact, so one
			// rounding to float32 of a·x + y in float64 differs from fmaf by at most one
			// double-rounding ulp.
			const a = 0.3
			check(t, s.AxpyF32(yb, xb, a, n))
			for i := range want {
				want[i] = float32(float64(float32(a))*float64(x[i]) + float64(y[i]))
			}
			compare(t, fmt.Sprintf("AxpyF32 n=%d", n), download[float32](t, yb, n), want, nil, 1e-45, f32ULP)
			checkSentinel(t, fmt.Sprintf("AxpyF32 n=%d", n), yb, n, 5, 4)
			// Scale, in place and out of place.
			check(t, s.ScaleF32(fb, xb, -3.5, n))
			kernels.Scale(want, -3.5, x)
			exact(t, fmt.Sprintf("ScaleF32 n=%d", n), download[float32](t, fb, n), want)
			check(t, s.ScaleF32(xb, xb, 2, n))
			kernels.Scale(want, 2, x)
			exact(t, fmt.Sprintf("ScaleF32 in place n=%d", n), download[float32](t, xb, n), want)
			xb.Free()
			yb.Free()
			fb.Free()
		}
	})
}

// bf16Specials are the float32 values whose bfloat16 rounding is worth checking one by one.
var bf16Specials = []float32{
	0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)),
	float32(math.NaN()), math.Float32frombits(0xffc00001), math.Float32frombits(0x7f800001), // NaNs, one signalling
	math.Float32frombits(0x3f808000), // 1 + 2**-8: a tie, rounds to even (1)
	math.Float32frombits(0x3f818000), // a tie that rounds up to the even neighbour
	math.Float32frombits(0x3f808001), // just above a tie
	math.Float32frombits(0x7f7fffff), // max float32: rounds to +Inf
	math.Float32frombits(0x00000001), // the smallest subnormal
	math.Float32frombits(0x807fffff), // the largest negative subnormal
	math.Float32frombits(0x7f7f7fff), // just below the bf16 overflow tie
}

func TestBF16Casts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		for _, n := range sizes[:3] {
			x := append(randF32(uint64(n), n, -1e4, 1e4), bf16Specials...)
			m := len(x)
			xb := upload(t, c, x, 0)
			hb := upload(t, c, make([]uint16, m), 3)
			check(t, s.F32ToBF16(hb, xb, m))
			got := download[uint16](t, hb, m)
			want := bf16s(x)
			for i := range got {
				// Any quiet NaN with the sign kept is acceptable for a NaN input.
				if x[i] != x[i] && got[i]&0x7fc0 == 0x7fc0 && got[i]>>15 == want[i]>>15 {
					got[i] = want[i]
				}
			}
			exact(t, fmt.Sprintf("F32ToBF16 n=%d", m), got, want)
			checkSentinel(t, "F32ToBF16", hb, m, 3, 2)
			// And back: exact widening.
			fb := upload(t, c, make([]float32, m), 2)
			check(t, s.BF16ToF32(fb, hb, m))
			wantF := make([]float32, m)
			for i, h := range download[uint16](t, hb, m) {
				wantF[i] = fromBF16(h)
			}
			exact(t, fmt.Sprintf("BF16ToF32 n=%d", m), download[float32](t, fb, m), wantF)
			checkSentinel(t, "BF16ToF32", fb, m, 2, 4)
			xb.Free()
			hb.Free()
			fb.Free()
		}
	})
}

// philox4x32 is Philox4x32-10 (Random123; curand's generator), the reference of the dropout
// kernels.
func philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	for r := 0; r < 10; r++ {
		if r > 0 {
			key[0] += 0x9E3779B9
			key[1] += 0xBB67AE85
		}
		p0 := uint64(0xD2511F53) * uint64(ctr[0])
		p1 := uint64(0xCD9E8D57) * uint64(ctr[2])
		hi0, lo0 := uint32(p0>>32), uint32(p0)
		hi1, lo1 := uint32(p1>>32), uint32(p1)
		ctr = [4]uint32{hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0}
	}
	return ctr
}

// dropoutKeep is KERNELS.md's keep decision for element i.
func dropoutKeep(i uint64, p float32, seed, offset uint64) bool {
	c := offset + i
	r := philox4x32([4]uint32{uint32(c), uint32(c >> 32), 0, 0}, [2]uint32{uint32(seed), uint32(seed >> 32)})
	u := float32(r[0]>>8) * (1.0 / (1 << 24))
	return u >= p
}

func TestPhiloxKnownAnswer(t *testing.T) {
	// Random123's kat_vectors: philox4x32 10 rounds, counter 0, key 0, and the pi digits case.
	for _, tc := range []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	} {
		if got := philox4x32(tc.ctr, tc.key); got != tc.want {
			t.Errorf("philox4x32(%x, %x) = %x, want %x", tc.ctr, tc.key, got, tc.want)
		}
	}
}

func TestDropout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		const seed, offset = 0x0123456789abcdef, 1<<32 - 3 // the counter crosses 2**32
		for _, p := range []float32{0, 0.1, 0.5} {
			for _, n := range sizes {
				x := randF32(uint64(n), n, -2, 2)
				xb := upload(t, c, x, 0)
				yb := upload(t, c, make([]float32, n), 4)
				mb := upload(t, c, make([]uint8, n), 4)
				check(t, s.DropoutForward(yb, mb, xb, n, p, seed, offset))
				scale := 1 / (1 - p)
				wantY, wantM := make([]float32, n), make([]uint8, n)
				kept := 0
				for i := range x {
					if dropoutKeep(uint64(i), p, seed, offset) {
						wantY[i], wantM[i] = x[i]*scale, 1
						kept++
					}
				}
				name := fmt.Sprintf("DropoutForward p=%v n=%d", p, n)
				exact(t, name+" y", download[float32](t, yb, n), wantY)
				exact(t, name+" mask", download[uint8](t, mb, n), wantM)
				checkSentinel(t, name+" y", yb, n, 4, 4)
				checkSentinel(t, name+" mask", mb, n, 4, 1)
				if n > 1000 {
					if f := float64(kept) / float64(n); math.Abs(f-float64(1-p)) > 5*math.Sqrt(float64(p*(1-p))/float64(n))+1e-9 {
						t.Errorf("%s: kept fraction %.4f, want %.4f", name, f, 1-p)
					}
				}
				// Backward, in place on a copy of dy = x, and without a mask output.
				check(t, s.DropoutBackward(xb, xb, n, p, seed, offset))
				exact(t, fmt.Sprintf("DropoutBackward p=%v n=%d", p, n), download[float32](t, xb, n), wantY)
				check(t, s.DropoutForward(yb, Buffer{}, yb, n, p, seed, offset+uint64(n)))
				xb.Free()
				yb.Free()
				mb.Free()
			}
		}
	})
}

func TestDropoutSplitMixMatchesCPU(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		const seed, offset = 42, 1<<32 - 5
		for _, p := range []float32{0, 0.1, 0.5} {
			for _, n := range sizes[:3] {
				x := randF32(uint64(n), n, -2, 2)
				xb := upload(t, c, x, 0)
				yb := upload(t, c, make([]float32, n), 4)
				mb := upload(t, c, make([]uint8, n), 4)
				check(t, s.DropoutForwardSplitMix(yb, mb, xb, n, p, seed, offset))
				cpuMask := make([]float32, n)
				kernels.DropoutMask(cpuMask, p, seed, offset)
				wantY, wantM := make([]float32, n), make([]uint8, n)
				kernels.Mul(wantY, x, cpuMask)
				for i, m := range cpuMask {
					if m != 0 {
						wantM[i] = 1
					}
				}
				name := fmt.Sprintf("DropoutForwardSplitMix p=%v n=%d", p, n)
				exact(t, name+" y (CPU mask)", download[float32](t, yb, n), wantY)
				exact(t, name+" mask", download[uint8](t, mb, n), wantM)
				checkSentinel(t, name, yb, n, 4, 4)
				check(t, s.DropoutBackwardSplitMix(xb, xb, n, p, seed, offset))
				exact(t, fmt.Sprintf("DropoutBackwardSplitMix p=%v n=%d", p, n), download[float32](t, xb, n), wantY)
				xb.Free()
				yb.Free()
				mb.Free()
			}
		}
	})
}

func TestReduce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		out := upload(t, c, []float32{0}, 0)
		defer out.Free()
		// 2048·1024+1 elements need more than the 1024 partial blocks: grid-stride inside each.
		for _, n := range []int{1, 7, 1027, 100003, 2048*1024 + 1} {
			x := randF32(uint64(n)+7, n, -1, 1.5)
			xb := upload(t, c, x, 0)
			var sum, sumAbs, sq, mx float64
			for _, v := range x {
				sum += float64(v)
				sumAbs += math.Abs(float64(v))
				sq += float64(v) * float64(v)
				mx = max(mx, math.Abs(float64(v)))
			}
			for _, tc := range []struct {
				r     Reduction
				want  float64
				scale float64
				rtol  float64
			}{
				{ReduceSum, sum, sumAbs, rtolF32Sum},
				{ReduceSumSq, sq, sq, rtolF32Sum},
				{ReduceMaxAbs, mx, mx, 0},
				{ReduceNorm2, math.Sqrt(sq), math.Sqrt(sq), rtolF32Sum},
			} {
				if n > 1<<20 && tc.r != ReduceSum {
					continue // one reduction is enough at this size on the emulator
				}
				check(t, s.ReduceF32(out, xb, n, tc.r))
				got := download[float32](t, out, 1)
				compare(t, fmt.Sprintf("ReduceF32(%d) n=%d", tc.r, n), got, []float32{float32(tc.want)}, []float64{tc.scale}, 1e-30, tc.rtol)
				// Deterministic: the same bits again.
				check(t, s.ReduceF32(out, xb, n, tc.r))
				exact(t, fmt.Sprintf("ReduceF32(%d) n=%d rerun", tc.r, n), download[float32](t, out, 1), got)
			}
			xb.Free()
		}
	})
}

func TestColSum(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		for _, sh := range [][2]int{{1, 1}, {7, 3}, {1027, 33}, {300, 1027}, {5, 768}} {
			rows, cols := sh[0], sh[1]
			x := randF32(uint64(rows*cols), rows*cols, -1, 1)
			init := randF32(3, cols, -1, 1)
			xb := upload(t, c, x, 0)
			for _, acc := range []bool{false, true} {
				ob := upload(t, c, init, 2)
				check(t, s.ColSumF32(ob, xb, rows, cols, acc))
				want := make([]float32, cols)
				scale := make([]float64, cols)
				for j := 0; j < cols; j++ {
					var sum, abs float64
					if acc {
						sum, abs = float64(init[j]), math.Abs(float64(init[j]))
					}
					for r := 0; r < rows; r++ {
						v := float64(x[r*cols+j])
						sum += v
						abs += math.Abs(v)
					}
					want[j], scale[j] = float32(sum), abs
				}
				name := fmt.Sprintf("ColSumF32 %dx%d accumulate=%v", rows, cols, acc)
				compare(t, name, download[float32](t, ob, cols), want, scale, 1e-30, rtolF32Sum)
				checkSentinel(t, name, ob, cols, 2, 4)
				ob.Free()
			}
			xb.Free()
		}
	})
}

func TestAdamWMulti(t *testing.T) {
	for _, decoupled := range []bool{true, false} {
		t.Run(fmt.Sprintf("decoupled=%v", decoupled), func(t *testing.T) { testAdamWMulti(t, decoupled) })
	}
}

// testAdamWMulti checks the multi-tensor Adam kernel against kernels.AdamStep over 3 steps, with
// AdamW's decoupled weight decay or Adam's L2 term.
func testAdamWMulti(t *testing.T, decoupled bool) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		ns := []int{1, 7, 1027, 70001}
		type host struct{ p, g, m, v []float32 }
		var hs []host
		var ts []AdamTensor
		var bufs []Buffer
		for i, n := range ns {
			h := host{randF32(uint64(10*i), n, -1, 1), randF32(uint64(10*i+1), n, -0.1, 0.1), make([]float32, n), make([]float32, n)}
			hs = append(hs, h)
			at := AdamTensor{P: upload(t, c, h.p, 0), G: upload(t, c, h.g, 0), M: upload(t, c, h.m, 0), V: upload(t, c, h.v, 0), N: n, Decay: i%2 == 0}
			if i == 2 {
				at.PBF16 = upload(t, c, make([]uint16, n), 0)
				bufs = append(bufs, at.PBF16)
			}
			bufs = append(bufs, at.P, at.G, at.M, at.V)
			ts = append(ts, at)
		}
		defer func() {
			for _, b := range bufs {
				b.Free()
			}
		}()
		tab, err := c.NewAdamTable(ts)
		check(t, err)
		defer tab.Free()
		gn := upload(t, c, []float32{0}, 0)
		defer gn.Free()
		// Global gradient norm.
		check(t, s.GradNorm(gn, tab))
		var sq float64
		for _, h := range hs {
			for _, v := range h.g {
				sq += float64(v) * float64(v)
			}
		}
		gnorm := download[float32](t, gn, 1)
		compare(t, "GradNorm", gnorm, []float32{float32(math.Sqrt(sq))}, nil, 0, rtolF32Sum)
		const gradScale, maxNorm = 0.5, 1.0
		clip := min(float32(1), maxNorm/(gnorm[0]+1e-6))
		for step := 1; step <= 3; step++ {
			hp := kernels.AdamParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: decoupled, Step: step}
			check(t, s.AdamW(tab, hp, gradScale, gn, maxNorm))
			for i, h := range hs {
				g := make([]float32, len(h.g))
				for j, v := range h.g {
					g[j] = v * gradScale * clip
				}
				hq := hp
				if !ts[i].Decay {
					hq.WeightDecay = 0
				}
				kernels.AdamStep(h.p, g, h.m, h.v, hq)
			}
		}
		for i, h := range hs {
			name := fmt.Sprintf("AdamW tensor %d (n=%d, decay=%v)", i, ts[i].N, ts[i].Decay)
			compare(t, name+" p", download[float32](t, ts[i].P, ts[i].N), h.p, nil, 1e-12, rtolF32)
			compare(t, name+" m", download[float32](t, ts[i].M, ts[i].N), h.m, nil, 1e-12, rtolF32)
			compare(t, name+" v", download[float32](t, ts[i].V, ts[i].N), h.v, nil, 1e-20, rtolF32)
			exact(t, name+" g untouched", download[float32](t, ts[i].G, ts[i].N), h.g)
			if ts[i].PBF16.Ptr != 0 {
				compareBF16(t, name+" p_bf16", download[uint16](t, ts[i].PBF16, ts[i].N), h.p, nil, 1e-12, rtolF32)
			}
		}
	})
}
