package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/mtbert/mtbert/kernels"
)

// Conformance of src/nn.cu against the CPU kernels of package kernels.

func TestSoftmaxXent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		const ignore = -100
		for _, sh := range [][2]int{{1, 1}, {1, 7}, {7, 1027}, {33, 257}, {3, 30522}} {
			n, v := sh[0], sh[1]
			logits := randF32(uint64(n*v), n*v, -8, 8)
			targets := make([]int32, n)
			for i := range targets {
				targets[i] = int32((i * 7919) % v)
				if i%3 == 2 {
					targets[i] = ignore
				}
			}
			lb, tb := upload(t, c, logits, 0), upload(t, c, targets, 0)
			loss := upload(t, c, make([]float32, n), 1)
			dl := upload(t, c, make([]float32, n*v), 1)
			const gradScale = 0.25
			check(t, s.SoftmaxXent(loss, dl, lb, tb, n, v, ignore, gradScale))
			// Reference: the CPU kernel per row (its mean over one row is the row's loss).
			wantLoss := make([]float32, n)
			wantD := make([]float32, n*v)
			probs := make([]float32, v)
			for i := 0; i < n; i++ {
				if targets[i] == ignore {
					continue
				}
				l, cnt := kernels.CrossEntropyForward(probs, logits[i*v:(i+1)*v], targets[i:i+1], 1, v, ignore)
				if cnt != 1 {
					t.Fatal("row not counted")
				}
				wantLoss[i] = l
				kernels.CrossEntropyBackward(wantD[i*v:(i+1)*v], probs, targets[i:i+1], 1, v, ignore, 1, gradScale)
			}
			name := fmt.Sprintf("SoftmaxXent n=%d v=%d", n, v)
			// The loss is lse − logit: its rounding is relative to the terms, about |logit| + lse.
			scale := make([]float64, n)
			for i := range scale {
				scale[i] = 16 + math.Abs(float64(wantLoss[i]))
			}
			compare(t, name+" loss", download[float32](t, loss, n), wantLoss, scale, 1e-30, rtolMath)
			compare(t, name+" dlogits", download[float32](t, dl, n*v), wantD, nil, 1e-9*gradScale, 1e-5)
			checkSentinel(t, name+" loss", loss, n, 1, 4)
			checkSentinel(t, name+" dlogits", dl, n*v, 1, 4)
			// In place, without the loss.
			check(t, s.SoftmaxXent(Buffer{}, lb, lb, tb, n, v, ignore, gradScale))
			compare(t, name+" dlogits in place", download[float32](t, lb, n*v), wantD, nil, 1e-9*gradScale, 1e-5)
			for _, b := range []Buffer{lb, tb, loss, dl} {
				b.Free()
			}
		}
	})
}

func TestBiasGelu(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		for _, sh := range [][2]int{{1, 1}, {7, 7}, {1027, 33}, {4, 3072}} {
			rows, cols := sh[0], sh[1]
			n := rows * cols
			x := randF32(uint64(n), n, -6, 6)
			bias := randF32(uint64(n)+1, cols, -1, 1)
			xb, bb := upload(t, c, x, 0), upload(t, c, bias, 0)
			hb, yb, y16 := upload(t, c, make([]float32, n), 2), upload(t, c, make([]float32, n), 2), upload(t, c, make([]uint16, n), 2)
			check(t, s.BiasGeluForward(hb, yb, y16, xb, bb, rows, cols))
			pre := make([]float32, n)
			for i := range pre {
				pre[i] = x[i] + bias[i%cols]
			}
			// Reference: the exact GELU in float64. Both float32 implementations compute
			// 1 + erf(t/√2), which cancels for negative t: the absolute error is a few ulp of |t|.
			want, scale := geluRef(pre)
			name := fmt.Sprintf("BiasGeluForward %dx%d", rows, cols)
			exact(t, name+" h", download[float32](t, hb, n), pre)
			compare(t, name+" y", download[float32](t, yb, n), want, scale, 1e-30, rtolMath)
			compareBF16(t, name+" y_bf16", download[uint16](t, y16, n), want, scale, 1e-30, rtolMath)
			checkSentinel(t, name+" y", yb, n, 2, 4)
			checkSentinel(t, name+" y_bf16", y16, n, 2, 2)
			// The CPU kernel agrees with the same reference at the same tolerance.
			cpu := make([]float32, n)
			kernels.GeluForward(cpu, pre)
			compare(t, name+" (CPU kernel)", cpu, want, scale, 1e-30, rtolMath)
			// Without bias and outputs other than y.
			check(t, s.BiasGeluForward(Buffer{}, yb, Buffer{}, xb, Buffer{}, rows, cols))
			want, scale = geluRef(x)
			compare(t, name+" no bias", download[float32](t, yb, n), want, scale, 1e-30, rtolMath)

			// Backward: dx = (acc ? dx : 0) + dy·gelu'(h).
			dy := randF32(uint64(n)+2, n, -1, 1)
			dx0 := randF32(uint64(n)+3, n, -1, 1)
			dyb := upload(t, c, dy, 0)
			for _, acc := range []bool{false, true} {
				dxb, dx16 := upload(t, c, dx0, 2), upload(t, c, make([]uint16, n), 2)
				check(t, s.BiasGeluBackward(dxb, dx16, dyb, hb, rows, cols, acc))
				// Reference in float64; Φ(h) cancels for negative h as above, so the error is a
				// few ulp of |dy|·(1 + |h|).
				d := make([]float32, n)
				scale := make([]float64, n)
				for i, h := range pre {
					hh := float64(h)
					d[i] = float32(float64(dy[i]) * (0.5*(1+math.Erf(hh/math.Sqrt2)) + hh*math.Exp(-0.5*hh*hh)/math.Sqrt(2*math.Pi)))
					scale[i] = math.Abs(float64(dy[i])) * (1 + math.Abs(hh))
				}
				// The CPU backward (gradient-checked in package kernels) meets the same reference.
				cpu := make([]float32, n)
				kernels.GeluBackward(cpu, dy, pre)
				compare(t, fmt.Sprintf("GeluBackward %dx%d (CPU kernel)", rows, cols), cpu, d, scale, 1e-30, rtolMath)
				wantDX := d
				if acc {
					wantDX = make([]float32, n)
					for i := range wantDX {
						wantDX[i] = dx0[i] + d[i]
						scale[i] += math.Abs(float64(dx0[i]))
					}
				}
				bname := fmt.Sprintf("BiasGeluBackward %dx%d accumulate=%v", rows, cols, acc)
				compare(t, bname+" dx", download[float32](t, dxb, n), wantDX, scale, 1e-7, rtolMath)
				compareBF16(t, bname+" dx_bf16", download[uint16](t, dx16, n), d, scale, 1e-30, rtolMath)
				checkSentinel(t, bname, dxb, n, 2, 4)
				dxb.Free()
				dx16.Free()
			}
			for _, b := range []Buffer{xb, bb, hb, yb, y16, dyb} {
				b.Free()
			}
		}
	})
}

func TestBiasAdd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		for _, sh := range [][2]int{{1, 1}, {7, 7}, {1027, 33}} {
			rows, cols := sh[0], sh[1]
			n := rows * cols
			x, bias := randF32(uint64(n), n, -3, 3), randF32(uint64(n)+1, cols, -1, 1)
			xb, bb := upload(t, c, x, 0), upload(t, c, bias, 0)
			yb, y16 := upload(t, c, make([]float32, n), 2), upload(t, c, make([]uint16, n), 2)
			check(t, s.BiasAdd(yb, y16, xb, bb, rows, cols))
			want := make([]float32, n)
			for i := range want {
				want[i] = x[i] + bias[i%cols]
			}
			name := fmt.Sprintf("BiasAdd %dx%d", rows, cols)
			exact(t, name+" y", download[float32](t, yb, n), want)
			exact(t, name+" y_bf16", download[uint16](t, y16, n), bf16s(want))
			checkSentinel(t, name, yb, n, 2, 4)
			checkSentinel(t, name+" bf16", y16, n, 2, 2)
			// In place, without bias: unchanged.
			check(t, s.BiasAdd(xb, Buffer{}, xb, Buffer{}, rows, cols))
			exact(t, name+" in place without bias", download[float32](t, xb, n), x)
			for _, b := range []Buffer{xb, bb, yb, y16} {
				b.Free()
			}
		}
	})
}

func TestLayerNorm(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		st := c.Stream()
		const eps = 1e-12
		for _, sh := range [][2]int{{1, 1}, {7, 7}, {1027, 33}, {9, 768}, {3, 1027}} {
			rows, cols := sh[0], sh[1]
			n := rows * cols
			x := randF32(uint64(n), n, -3, 5)
			r := randF32(uint64(n)+1, n, -1, 1)
			gamma := randF32(uint64(n)+2, cols, 0.5, 1.5)
			beta := randF32(uint64(n)+3, cols, -0.5, 0.5)
			xb, rb, gb, bb := upload(t, c, x, 0), upload(t, c, r, 0), upload(t, c, gamma, 0), upload(t, c, beta, 0)
			yb, y16, sb := upload(t, c, make([]float32, n), 2), upload(t, c, make([]uint16, n), 2), upload(t, c, make([]float32, n), 2)
			mb, rsb := upload(t, c, make([]float32, rows), 1), upload(t, c, make([]float32, rows), 1)
			check(t, st.LayerNormForward(yb, y16, sb, mb, rsb, xb, rb, gb, bb, rows, cols, eps))
			sum := make([]float32, n)
			for i := range sum {
				sum[i] = x[i] + r[i]
			}
			want, mean, rstd := make([]float32, n), make([]float32, rows), make([]float32, rows)
			kernels.LayerNormForward(want, mean, rstd, sum, gamma, beta, rows, cols, eps)
			name := fmt.Sprintf("LayerNormForward %dx%d", rows, cols)
			exact(t, name+" s", download[float32](t, sb, n), sum)
			// float32 statistics against the CPU's float64 ones: relative to the row's scale.
			compare(t, name+" mean", download[float32](t, mb, rows), mean, nil, 1e-6, rtolF32Sum)
			rstdTol := rtolF32Sum
			if cols == 1 {
				rstdTol = 0 // var = 0: rstd = 1/sqrt(eps) exactly
			}
			compare(t, name+" rstd", download[float32](t, rsb, rows), rstd, nil, 0, rstdTol)
			compare(t, name+" y", download[float32](t, yb, n), want, nil, 1e-5, 1e-5)
			compareBF16(t, name+" y_bf16", download[uint16](t, y16, n), want, nil, 1e-5, 1e-5)
			checkSentinel(t, name+" y", yb, n, 2, 4)
			checkSentinel(t, name+" mean", mb, rows, 1, 4)

			// Backward against the CPU backward (gradient-checked in package kernels).
			dy := randF32(uint64(n)+4, n, -1, 1)
			dx0 := randF32(uint64(n)+5, n, -1, 1)
			dyb := upload(t, c, dy, 0)
			wantD := make([]float32, n)
			dgamma, dbeta := make([]float32, cols), make([]float32, cols)
			kernels.LayerNormBackward(wantD, dgamma, dbeta, dy, sum, mean, rstd, gamma, rows, cols)
			for _, acc := range []bool{false, true} {
				dxb, dx16 := upload(t, c, dx0, 2), upload(t, c, make([]uint16, n), 2)
				check(t, st.LayerNormBackward(dxb, dx16, dyb, sb, mb, rsb, gb, rows, cols, acc))
				wantDX := wantD
				if acc {
					wantDX = make([]float32, n)
					for i := range wantDX {
						wantDX[i] = dx0[i] + wantD[i]
					}
				}
				bname := fmt.Sprintf("LayerNormBackward %dx%d accumulate=%v", rows, cols, acc)
				// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)): the terms are of size rstd·|g|.
				scale := make([]float64, n)
				for i := range scale {
					scale[i] = float64(rstd[i/cols]) * (math.Abs(float64(dy[i]*gamma[i%cols])) + 1)
				}
				if cols == 1 {
					for i := range scale {
						scale[i] = 1 // dx is exactly 0 up to rounding of g − g
					}
				}
				compare(t, bname+" dx", download[float32](t, dxb, n), wantDX, scale, 1e-6, 1e-5)
				compareBF16(t, bname+" dx_bf16", download[uint16](t, dx16, n), wantD, scale, 1e-6, 1e-5)
				checkSentinel(t, bname, dxb, n, 2, 4)
				dxb.Free()
				dx16.Free()
			}
			// Parameter gradients, accumulated onto initial values.
			g0, b0 := randF32(7, cols, -1, 1), randF32(8, cols, -1, 1)
			dgb, dbb := upload(t, c, g0, 1), upload(t, c, b0, 1)
			check(t, st.LayerNormParamsBackward(dgb, dbb, dyb, sb, mb, rsb, rows, cols))
			scaleG, scaleB := make([]float64, cols), make([]float64, cols)
			wantG, wantB := make([]float32, cols), make([]float32, cols)
			for j := range cols {
				wantG[j], wantB[j] = g0[j]+dgamma[j], b0[j]+dbeta[j]
				scaleG[j], scaleB[j] = math.Abs(float64(g0[j])), math.Abs(float64(b0[j]))
				for i := 0; i < rows; i++ {
					xh := (float64(sum[i*cols+j]) - float64(mean[i])) * float64(rstd[i])
					scaleG[j] += math.Abs(float64(dy[i*cols+j]) * xh)
					scaleB[j] += math.Abs(float64(dy[i*cols+j]))
				}
			}
			pname := fmt.Sprintf("LayerNormParamsBackward %dx%d", rows, cols)
			compare(t, pname+" dgamma", download[float32](t, dgb, cols), wantG, scaleG, 1e-6, 1e-5)
			compare(t, pname+" dbeta", download[float32](t, dbb, cols), wantB, scaleB, 1e-7, rtolF32Sum)
			checkSentinel(t, pname+" dgamma", dgb, cols, 1, 4)
			for _, b := range []Buffer{xb, rb, gb, bb, yb, y16, sb, mb, rsb, dyb, dgb, dbb} {
				b.Free()
			}
		}
	})
}

func TestEmbedding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		for _, sh := range [][3]int{{1, 1, 1}, {7, 5, 7}, {1027, 100, 33}, {64, 30522, 768}} {
			n, vocab, dim := sh[0], sh[1], sh[2]
			table := randF32(uint64(vocab*dim), vocab*dim, -1, 1)
			ids := make([]int32, n)
			for i := range ids {
				ids[i] = int32((i*i*31 + 7) % vocab)
				if i%11 == 10 {
					ids[i] = -1 // padding: a zero row
				}
			}
			tb, ib := upload(t, c, table, 0), upload(t, c, ids, 0)
			y0 := randF32(9, n*dim, -1, 1)
			for _, acc := range []bool{false, true} {
				yb := upload(t, c, y0, 3)
				check(t, s.EmbeddingForward(yb, tb, ib, n, dim, acc))
				want := make([]float32, n*dim)
				for i, id := range ids {
					for j := 0; j < dim; j++ {
						var v float32
						if acc {
							v = y0[i*dim+j]
						}
						if id >= 0 {
							v += table[int(id)*dim+j]
						}
						want[i*dim+j] = v
					}
				}
				name := fmt.Sprintf("EmbeddingForward n=%d vocab=%d dim=%d accumulate=%v", n, vocab, dim, acc)
				exact(t, name, download[float32](t, yb, n*dim), want)
				checkSentinel(t, name, yb, n*dim, 3, 4)
				yb.Free()
			}
			// Backward: dtable[id] += Σ dy rows with that id, in row order.
			dy := randF32(10, n*dim, -1, 1)
			d0 := randF32(11, vocab*dim, -1, 1)
			dyb, db := upload(t, c, dy, 0), upload(t, c, d0, 2)
			check(t, s.EmbeddingBackward(db, dyb, ib, ids, dim))
			want := append([]float32(nil), d0...)
			scale := make([]float64, vocab*dim)
			for i := range scale {
				scale[i] = math.Abs(float64(d0[i]))
			}
			for i, id := range ids {
				if id < 0 {
					continue
				}
				for j := 0; j < dim; j++ {
					want[int(id)*dim+j] += dy[i*dim+j]
					scale[int(id)*dim+j] += math.Abs(float64(dy[i*dim+j]))
				}
			}
			name := fmt.Sprintf("EmbeddingBackward n=%d vocab=%d dim=%d", n, vocab, dim)
			got := download[float32](t, db, vocab*dim)
			compare(t, name, got, want, scale, 1e-30, 2*rtolF32)
			checkSentinel(t, name, db, vocab*dim, 2, 4)
			// Deterministic.
			check(t, Upload(s, db, d0))
			check(t, s.EmbeddingBackward(db, dyb, ib, ids, dim))
			exact(t, name+" rerun", download[float32](t, db, vocab*dim), got)
			for _, b := range []Buffer{tb, ib, dyb, db} {
				b.Free()
			}
		}
	})
}

// geluRef returns the exact GELU of x in float64 rounded to float32, and the scale |x| its
// float32 evaluations are compared at.
func geluRef(x []float32) ([]float32, []float64) {
	y, sc := make([]float32, len(x)), make([]float64, len(x))
	for i, v := range x {
		t := float64(v)
		y[i] = float32(0.5 * t * (1 + math.Erf(t/math.Sqrt2)))
		sc[i] = math.Abs(t)
	}
	return y, sc
}
