package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/mtbert/mtbert/kernels"
)

// Conformance of src/attention.cu against a float64 reference computed from the same
// bf16-rounded inputs. Tolerances are relative to the sums of absolute terms of each output
// (float32 accumulation), widened for the approximate exp/log (ex2.approx, ~2 ulp, of scores
// up to |s| ≈ 10): rtolAttn.
const rtolAttn = 1e-5

// rtolAttnTC adds, for the tensor-core kernels, the bf16 rounding of P and dS before their
// products: at most 2**-9 relative per term, in the weighted sum and in its normaliser, so
// 2·2**-9 of the sum of absolute terms.
const rtolAttnTC = 2.0/512 + rtolAttn

// attnRef is the float64 forward and backward of one attention.
type attnRef struct {
	o, oScale     []float64 // (B, H, T, D) dense
	lse           []float64 // (B, H, T)
	dq, dk, dv    []float64 // (B, H, T, D) dense
	dqS, dkS, dvS []float64 // error scales
}

// attnReference computes the reference for dense (B, H, T, D) q, k, v, dout (as float64 of
// bf16 values) with valid[b] valid keys.
// dropP > 0 applies kernels.Attention's dropout rule to the probabilities.
func attnReference(B, H, T, D int, scale float64, valid []int, dropP float32, seed uint64, q, k, v, dout []float64) attnRef {
	a := kernels.Attention{B: B, H: H, T: T, D: D, DropP: dropP, Seed: seed}
	keep := func(b, h, i, j int) float64 {
		if dropP == 0 {
			return 1
		}
		m := make([]float32, 1)
		// kernels.Attention's rule at flat index ((b·H+h)·T+i)·T+j: DropoutMask draws the same
		// u from SplitMix64(seed ^ idx·0x9e3779b97f4a7c15) and gives 0 or float32(1/(1−p)).
		kernels.DropoutMask(m, a.DropP, a.Seed, uint64(((b*H+h)*T+i)*T+j))
		return float64(m[0])
	}
	n := B * H * T * D
	r := attnRef{o: make([]float64, n), oScale: make([]float64, n), lse: make([]float64, B*H*T),
		dq: make([]float64, n), dk: make([]float64, n), dv: make([]float64, n),
		dqS: make([]float64, n), dkS: make([]float64, n), dvS: make([]float64, n)}
	p := make([]float64, T*T)
	dsAbs := make([]float64, T*T)
	ds := make([]float64, T*T)
	ks := make([]float64, T*T)
	for b := 0; b < B; b++ {
		nv := min(valid[b], T)
		for h := 0; h < H; h++ {
			base := (b*H + h) * T * D
			at := func(x []float64, t, d int) float64 { return x[base+t*D+d] }
			clear(p)
			for i := 0; i < T; i++ {
				li := (b*H+h)*T + i
				if nv <= 0 {
					r.lse[li] = math.Inf(1)
					continue
				}
				m := math.Inf(-1)
				for j := 0; j < nv; j++ {
					var s float64
					for d := 0; d < D; d++ {
						s += at(q, i, d) * at(k, j, d)
					}
					p[i*T+j] = s * scale
					m = max(m, p[i*T+j])
				}
				var sum float64
				for j := 0; j < nv; j++ {
					p[i*T+j] = math.Exp(p[i*T+j] - m)
					sum += p[i*T+j]
				}
				r.lse[li] = m + math.Log(sum)
				for j := 0; j < nv; j++ {
					p[i*T+j] /= sum
				}
				for j := 0; j < nv; j++ {
					ks[i*T+j] = keep(b, h, i, j)
				}
				for d := 0; d < D; d++ {
					var o, os float64
					for j := 0; j < nv; j++ {
						pd := p[i*T+j] * ks[i*T+j]
						o += pd * at(v, j, d)
						os += pd * math.Abs(at(v, j, d))
					}
					r.o[base+i*D+d], r.oScale[base+i*D+d] = o, os
				}
			}
			// Backward.
			for i := 0; i < T; i++ {
				var di, diAbs float64
				for d := 0; d < D; d++ {
					di += at(dout, i, d) * r.o[base+i*D+d]
					diAbs += math.Abs(at(dout, i, d) * r.o[base+i*D+d])
				}
				for j := 0; j < nv; j++ {
					var dp, dpAbs float64
					for d := 0; d < D; d++ {
						dp += at(dout, i, d) * at(v, j, d)
						dpAbs += math.Abs(at(dout, i, d) * at(v, j, d))
					}
					pij, kij := p[i*T+j], ks[i*T+j]
					ds[i*T+j] = pij * (kij*dp - di)
					dsAbs[i*T+j] = pij * (kij*dpAbs + diAbs + 1)
				}
			}
			for t := 0; t < T; t++ {
				for d := 0; d < D; d++ {
					var dq, dqs, dk, dks, dv, dvs float64
					for j := 0; j < nv; j++ { // dQ_t = scale Σ_j dS_tj K_j
						dq += ds[t*T+j] * at(k, j, d)
						dqs += dsAbs[t*T+j] * math.Abs(at(k, j, d))
					}
					if t < nv { // key t: dK_t = scale Σ_i dS_it Q_i, dV_t = Σ_i P_it dO_i
						for i := 0; i < T; i++ {
							dk += ds[i*T+t] * at(q, i, d)
							dks += dsAbs[i*T+t] * math.Abs(at(q, i, d))
							dv += p[i*T+t] * ks[i*T+t] * at(dout, i, d)
							dvs += p[i*T+t] * ks[i*T+t] * math.Abs(at(dout, i, d))
						}
					}
					idx := base + t*D + d
					r.dq[idx], r.dqS[idx] = scale*dq, math.Abs(scale)*dqs
					r.dk[idx], r.dkS[idx] = scale*dk, math.Abs(scale)*dks
					r.dv[idx], r.dvS[idx] = dv, dvs
				}
			}
		}
	}
	return r
}

func TestFlashAttention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		type tc struct {
			B, H, T, D int
			valid      []int // nil: no ValidLen buffer
			fused      bool  // Q, K, V interleaved as a fused QKV projection [B, T, 3, H, D]
			kernel     AttentionKernel
			dropP      float32 // tensor-core kernels only
		}
		cases := []tc{
			{1, 1, 1, 64, nil, false, 0, 0},
			{2, 3, 7, 32, []int{7, 3}, true, 0, 0},
			{2, 2, 65, 64, []int{65, 64}, false, 0, 0},
			{1, 2, 130, 64, []int{100}, true, 0, 0},
			{2, 1, 130, 7, nil, false, 0, 0},
			{2, 2, 9, 16, []int{0, 20}, false, 0, 0}, // a sequence with no valid key; valid_len > T clamps
			{2, 2, 65, 64, []int{65, 40}, false, 0, 0.1},
			{1, 3, 130, 32, nil, true, 0, 0.25},
		}
		// Every case on the SIMT kernels, and on the tensor-core ones where D allows.
		var runs []tc
		for _, x := range cases {
			x.kernel = AttentionSIMT
			if x.dropP == 0 {
				runs = append(runs, x)
			}
			if x.D == 32 || x.D == 64 {
				x.kernel = AttentionTensorCore
				runs = append(runs, x)
			}
		}
		for ci, x := range runs {
			B, H, T, D := x.B, x.H, x.T, x.D
			kname := map[AttentionKernel]string{AttentionSIMT: "simt", AttentionTensorCore: "tensor cores"}[x.kernel]
			name := fmt.Sprintf("FlashAttention(%s) B=%d H=%d T=%d D=%d valid=%v fused=%v dropout=%v", kname, B, H, T, D, x.valid, x.fused, x.dropP)
			const seed = 0x5eed
			rt := rtolAttn
			if x.kernel == AttentionTensorCore {
				rt = rtolAttnTC
			}
			scale := float32(1 / math.Sqrt(float64(D)))
			n := B * H * T * D
			// Dense reference operands, bf16-rounded.
			qd := roundBF16(randF32(uint64(ci)*7+1, n, -2, 2))
			kd := roundBF16(randF32(uint64(ci)*7+2, n, -2, 2))
			vd := roundBF16(randF32(uint64(ci)*7+3, n, -1, 1))
			dod := roundBF16(randF32(uint64(ci)*7+4, n, -1, 1))
			a := FlashAttention{B: B, H: H, T: T, D: D, Scale: scale, Kernel: x.kernel, DropP: x.dropP, Seed: seed}
			// Device layouts: Q/K/V dense [B,H,T,D] or fused [B,T,3,H,D]; O and dO [B,T,H,D]
			// (what the output projection reads); dQ/dK/dV dense [B,H,T,D].
			a.OST, a.OSH, a.OSB = H*D, D, T*H*D
			qkvLen := n
			pos := func(b, h, tt, d int) int { return ((b*H+h)*T+tt)*D + d }
			if x.fused {
				a.QST, a.QSH, a.QSB = 3*H*D, D, T*3*H*D
				qkvLen = 3 * n
				pos = func(b, h, tt, d int) int { return b*a.QSB + tt*a.QST + h*D + d }
			}
			qkv := make([]uint16, 3*qkvLen)
			for b := 0; b < B; b++ {
				for h := 0; h < H; h++ {
					for tt := 0; tt < T; tt++ {
						for d := 0; d < D; d++ {
							di := ((b*H+h)*T+tt)*D + d
							if x.fused {
								p := pos(b, h, tt, d)
								qkv[p], qkv[p+H*D], qkv[p+2*H*D] = toBF16(qd[di]), toBF16(kd[di]), toBF16(vd[di])
							} else {
								qkv[di], qkv[n+di], qkv[2*n+di] = toBF16(qd[di]), toBF16(kd[di]), toBF16(vd[di])
							}
						}
					}
				}
			}
			all := upload(t, c, qkv, 0)
			var qb, kb, vb Buffer
			if x.fused {
				qb, kb, vb = all.Slice(0, 2*qkvLen), all.Slice(2*H*D, 2*qkvLen-2*H*D), all.Slice(4*H*D, 2*qkvLen-4*H*D)
			} else {
				qb, kb, vb = all.Slice(0, 2*n), all.Slice(2*n, 2*n), all.Slice(4*n, 2*n)
			}
			// dO in the O layout.
			oIdx := func(b, h, tt, d int) int { return b*a.OSB + tt*a.OST + h*a.OSH + d }
			doh := make([]uint16, n)
			for b := 0; b < B; b++ {
				for h := 0; h < H; h++ {
					for tt := 0; tt < T; tt++ {
						for d := 0; d < D; d++ {
							doh[oIdx(b, h, tt, d)] = toBF16(dod[((b*H+h)*T+tt)*D+d])
						}
					}
				}
			}
			valid := make([]int, B)
			for b := range valid {
				valid[b] = T
			}
			if x.valid != nil {
				copy(valid, x.valid)
				vl := make([]int32, B)
				for b, v := range x.valid {
					vl[b] = int32(v)
				}
				a.ValidLen = upload(t, c, vl, 0)
			}
			ob, of, lb := upload(t, c, make([]uint16, n), 2), upload(t, c, make([]float32, n), 2), upload(t, c, make([]float32, B*H*T), 2)
			check(t, s.FlashAttentionForward(a, qb, kb, vb, ob, of, lb))

			f64 := func(v []float32) []float64 {
				out := make([]float64, len(v))
				for i, x := range v {
					out[i] = float64(x)
				}
				return out
			}
			ref := attnReference(B, H, T, D, float64(scale), valid, x.dropP, seed, f64(qd), f64(kd), f64(vd), f64(dod))
			// Reorder the reference O to the device's O layout.
			wantO, scaleO := make([]float32, n), make([]float64, n)
			for b := 0; b < B; b++ {
				for h := 0; h < H; h++ {
					for tt := 0; tt < T; tt++ {
						for d := 0; d < D; d++ {
							ri := ((b*H+h)*T+tt)*D + d
							wantO[oIdx(b, h, tt, d)], scaleO[oIdx(b, h, tt, d)] = float32(ref.o[ri]), ref.oScale[ri]
						}
					}
				}
			}
			compare(t, name+" Of32", download[float32](t, of, n), wantO, scaleO, 1e-30, rt)
			toF32 := func(x []float64) []float32 {
				out := make([]float32, len(x))
				for i, v := range x {
					out[i] = float32(v)
				}
				return out
			}
			compareBF16(t, name+" O", download[uint16](t, ob, n), wantO, scaleO, 1e-30, rt)
			lse := make([]float32, len(ref.lse))
			lseScale := make([]float64, len(ref.lse))
			for i, v := range ref.lse {
				lse[i], lseScale[i] = float32(v), math.Abs(v)+4 // the scores are up to ~4 in size
			}
			compare(t, name+" lse", download[float32](t, lb, B*H*T), lse, lseScale, 1e-30, rtolAttn)
			checkSentinel(t, name+" O", ob, n, 2, 2)
			checkSentinel(t, name+" lse", lb, B*H*T, 2, 4)

			// The CPU attention of package kernels (gradient-checked there) on the same bf16
			// inputs meets the same reference; rows without a valid key differ by definition
			// (the CPU's mask bias gives them a uniform softmax), so those cases are left out.
			cpuDQ, cpuDK, cpuDV := cpuAttention(t, B, H, T, D, scale, x.dropP, seed, valid, x.valid != nil, qd, kd, vd, dod, ref)
			if cpuDQ != nil {
				compare(t, name+" CPU dQ", cpuDQ, toF32(ref.dq), ref.dqS, 1e-30, rtolAttn)
				compare(t, name+" CPU dK", cpuDK, toF32(ref.dk), ref.dkS, 1e-30, rtolAttn)
				compare(t, name+" CPU dV", cpuDV, toF32(ref.dv), ref.dvS, 1e-30, rtolAttn)
			}

			// Backward, with the O from Of32 and then from the bf16 O.
			dob := upload(t, c, doh, 0)
			for _, useF32 := range []bool{true, false} {
				dqb, dkb, dvb := upload(t, c, make([]float32, n), 2), upload(t, c, make([]float32, n), 2), upload(t, c, make([]float32, n), 2)
				ofArg := of
				rtol := rt
				if !useF32 {
					ofArg = Buffer{}
					rtol = 2*bf16ULP + rt // Σ dO·O from the bf16 O: off by up to half a bf16 step of O
				}
				check(t, s.FlashAttentionBackward(a, dqb, dkb, dvb, qb, kb, vb, ob, ofArg, dob, lb))
				bn := fmt.Sprintf("%s backward (O from %s)", name, map[bool]string{true: "Of32", false: "bf16 O"}[useF32])
				compare(t, bn+" dQ", download[float32](t, dqb, n), toF32(ref.dq), ref.dqS, 1e-30, rtol)
				compare(t, bn+" dK", download[float32](t, dkb, n), toF32(ref.dk), ref.dkS, 1e-30, rtol)
				compare(t, bn+" dV", download[float32](t, dvb, n), toF32(ref.dv), ref.dvS, 1e-30, rt)
				checkSentinel(t, bn+" dQ", dqb, n, 2, 4)
				checkSentinel(t, bn+" dK", dkb, n, 2, 4)
				checkSentinel(t, bn+" dV", dvb, n, 2, 4)
				for _, b := range []Buffer{dqb, dkb, dvb} {
					b.Free()
				}
			}
			for _, b := range []Buffer{all, ob, of, lb, dob, a.ValidLen} {
				if b.Ptr != 0 {
					b.Free()
				}
			}
		}
	})
}

// cpuAttention runs kernels.Attention forward and backward on dense (B, H, T, D) inputs and
// checks its output against the reference; it returns dQ, dK, dV, or nils when a sequence has
// no valid key.
func cpuAttention(t *testing.T, B, H, T, D int, scale, dropP float32, seed uint64, valid []int, masked bool, q, k, v, dout []float32, ref attnRef) (dq, dk, dv []float32) {
	t.Helper()
	a := kernels.Attention{B: B, H: H, T: T, D: D, Scale: scale, DropP: dropP, Seed: seed}
	if masked {
		a.Mask = make([]float32, B*T)
		for b := 0; b < B; b++ {
			if valid[b] <= 0 {
				return nil, nil, nil
			}
			for j := 0; j < min(valid[b], T); j++ {
				a.Mask[b*T+j] = 1
			}
		}
	}
	n := B * H * T * D
	view := func(x []float32) kernels.HeadView { return kernels.HeadView{Data: x, SB: H * T * D, SH: T * D, ST: D} }
	out, p := make([]float32, n), make([]float32, B*H*T*T)
	a.Forward(view(out), view(q), view(k), view(v), p)
	wantO := make([]float32, n)
	for i, x := range ref.o {
		wantO[i] = float32(x)
	}
	compare(t, "CPU attention O", out, wantO, ref.oScale, 1e-30, rtolAttn)
	dq, dk, dv = make([]float32, n), make([]float32, n), make([]float32, n)
	a.Backward(view(dq), view(dk), view(dv), view(dout), view(q), view(k), view(v), p)
	return dq, dk, dv
}
