package kernels

import (
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// Int8 inference GEMM: y = x·Wᵀ + bias with W quantised symmetric per output channel and x
// quantised per row (token) on the fly:
//
//	W[j][p] ≈ sw[j]·qw[j][p],  sw[j] = max_p |W[j][p]| / 127,  qw = round(W/sw) in [-127, 127]
//	x[i][p] ≈ sx[i]·qx[i][p],  sx[i] = max_p |x[i][p]| / 127,  qx likewise
//	acc[i][j] = Σ_p qx[i][p]·qw[j][p]   (int32, exact: see qMaxK)
//	y[i][j] = float32(acc)·sx[i]·sw[j] + bias[j]   (three float32 operations, rounded in turn)
//
// Every path (the VNNI and AVX2 micro-kernels, the pure-Go ones, the scalar reference) computes
// the same exact int32 sums and the same rounded epilogue, so all agree bit for bit.
//
// Two packed layouts serve the micro-kernels (qLayout):
//
//   - pairs (AVX2, generic): x as int16 and W as int8 in pairs of k steps, multiplied s8 × s8
//     exactly by VPMADDWD after widening W with VPMOVSXBW;
//   - quads (AVX512-VNNI): VPDPBUSD multiplies 4 unsigned bytes by 4 signed bytes and adds the
//     four products into an int32 lane. x is stored as u8 = qx+128 (in [1, 255]) and W as s8 in
//     quads of k steps; the kernel's sum is Σ(qx+128)·qw = acc + 128·Σ_p qw[j][p], so the
//     epilogue subtracts corr[j] = 128·colsum(qw)[j], precomputed at packing. Every partial
//     sum stays within |255·127·k| < 2³¹ (k < qMaxK), so the int32 arithmetic, the correction
//     included, is exact and the result is the same acc.

// MaxQuantizedK bounds k (the input size of an int8 linear layer) so that every int32 partial
// sum is exact: 255·127·k < 2³¹.
const MaxQuantizedK = qMaxK

const qMaxK = (1<<31 - 1) / (255 * 127)

// qLayout is one packed form of the int8 operands: mr×nr micro-tiles, g k steps per group
// (2: int16 pairs of x; 4: u8 quads of x, offset by 128).
type qLayout struct {
	mr, nr, g int
}

var (
	qPairs6x16  = qLayout{mr: 6, nr: 16, g: 2}
	qQuads12x32 = qLayout{mr: 12, nr: 32, g: 4}
	qQuads6x16  = qLayout{mr: 6, nr: 16, g: 4}
)

// abytes is the size of one x element in the packed A strip.
func (l qLayout) abytes() int {
	if l.g == 2 {
		return 2
	}
	return 1
}

// QuantizedB is a weight W (n×k, (out, in) as PyTorch stores it) quantised symmetric per output
// channel. Only the form packed for the micro-kernel in use is held (k·n bytes plus padding);
// Q unpacks the row-major checkpoint form on demand.
type QuantizedB struct {
	K, N  int
	Scale []float32 // n

	mu   sync.Mutex
	pack *qPacked // for the layout of the kernel in use (repacked when it changes)
}

// qPacked is W packed for one layout: kg groups of g steps per nr-column strip, strip s at
// s*kg*g*nr, element (group q, column j, step t) at q*g*nr + g*j + t; padding is zero.
type qPacked struct {
	layout qLayout
	data   []int8
	kg     int
	npad   int
	sw     []float32 // Scale padded to npad
	corr   []int32   // quads: 128·Σ_p qw[j][p], padded to npad
}

// QuantizeWeights quantises w (n×k) per row (output channel) as above; an all-zero row gets
// scale 0 (Scale never divides).
func QuantizeWeights(w []float32, n, k int) *QuantizedB {
	if len(w) != n*k {
		panic(fmt.Sprintf("kernels: QuantizeWeights: len(w)=%d, want n*k=%d*%d", len(w), n, k))
	}
	q := make([]int8, n*k)
	s := make([]float32, n)
	ParallelFor(n, 16, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			s[j] = quantizeRow(q[j*k:(j+1)*k], w[j*k:(j+1)*k])
		}
	})
	return NewQuantizedB(q, s, n, k)
}

// quantizeRow writes round(x/s) into q with s = max|x|/127 and returns s (0 for a zero row).
// Rounding is to nearest, ties away from zero; the quotient is x·(127/max), in float32. On
// amd64 with AVX-512F the bulk of the row goes through an assembly loop that computes the same
// (quantizeRowScalar is the reference it is tested against); x is assumed finite.
func quantizeRow(q []int8, x []float32) float32 {
	return archQuantizeRow(q, x)
}

// quantizeRowScalar is quantizeRow in plain Go.
func quantizeRowScalar(q []int8, x []float32) float32 {
	m := absMaxScalar(x)
	if m == 0 {
		clear(q)
		return 0
	}
	inv := 127 / m
	quantScalar(q, x, inv)
	return m / 127
}

func absMaxScalar(x []float32) float32 {
	var m float32
	for _, v := range x {
		m = max(m, float32(math.Abs(float64(v))))
	}
	return m
}

func quantScalar(q []int8, x []float32, inv float32) {
	for i, v := range x {
		q[i] = int8(max(-127, min(127, roundHalfAway(v*inv))))
	}
}

func roundHalfAway(v float32) float32 { return float32(math.Round(float64(v))) }

// NewQuantizedB wraps int8 weights q (n×k, values in [-127, 127]) and their scales (n), as
// read from a checkpoint, and packs them for the micro-kernel in use.
func NewQuantizedB(q []int8, scale []float32, n, k int) *QuantizedB {
	if len(q) != n*k || len(scale) != n {
		panic(fmt.Sprintf("kernels: NewQuantizedB: len(q)=%d len(scale)=%d for n=%d k=%d", len(q), len(scale), n, k))
	}
	if k >= qMaxK {
		panic(fmt.Sprintf("kernels: NewQuantizedB: k=%d too large for exact int32 sums (need < %d)", k, qMaxK))
	}
	b := &QuantizedB{K: k, N: n, Scale: scale}
	b.pack = packQ(q, scale, n, k, qgemmActive().layout)
	return b
}

// Q returns the int8 weights (n×k row-major, the checkpoint form), unpacked into a new slice.
func (b *QuantizedB) Q() []int8 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.unpack()
}

// unpack returns the row-major int8 weights from b.pack (b.mu held).
func (b *QuantizedB) unpack() []int8 {
	n, k, p := b.N, b.K, b.pack
	l := p.layout
	q := make([]int8, n*k)
	for j := range n {
		d := p.data[(j/l.nr)*p.kg*l.g*l.nr:]
		jj := j % l.nr
		for pp := range k {
			q[j*k+pp] = d[(pp/l.g)*l.g*l.nr+l.g*jj+pp%l.g]
		}
	}
	return q
}

// packed returns W packed for layout l, repacking it (and dropping the other layout) if needed.
func (b *QuantizedB) packed(l qLayout) *qPacked {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pack.layout != l {
		b.pack = packQ(b.unpack(), b.Scale, b.N, b.K, l)
	}
	return b.pack
}

// packQ packs q (n×k row-major) and its scales for layout l.
func packQ(q []int8, scale []float32, n, k int, l qLayout) *qPacked {
	kg := ceilDiv(k, l.g)
	npad := ceilDiv(n, l.nr) * l.nr
	p := &qPacked{layout: l, data: make([]int8, npad*kg*l.g), kg: kg, npad: npad, sw: make([]float32, npad)}
	copy(p.sw, scale)
	if l.g == 4 {
		p.corr = make([]int32, npad)
	}
	ParallelFor(n, 16, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			s, jj := j/l.nr, j%l.nr
			d := p.data[s*kg*l.g*l.nr:]
			var sum int32
			for pp, v := range q[j*k : (j+1)*k] {
				d[(pp/l.g)*l.g*l.nr+l.g*jj+pp%l.g] = v
				sum += int32(v)
			}
			if p.corr != nil {
				p.corr[j] = 128 * sum
			}
		}
	})
	return p
}

// Bytes returns the memory of the packed int8 weights and the scales.
func (b *QuantizedB) Bytes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pack
	return 4*len(b.Scale) + len(p.data) + 4*len(p.sw) + 4*len(p.corr)
}

// Dequantize returns sw[j]·qw[j][p] (n×k).
func (b *QuantizedB) Dequantize() []float32 {
	q := b.Q()
	w := make([]float32, b.N*b.K)
	for j := range b.N {
		for p := range b.K {
			w[j*b.K+p] = b.Scale[j] * float32(q[j*b.K+p])
		}
	}
	return w
}

// qgemmKernel is one int8 micro-kernel over a layout: acc over kg groups of the packed A strip
// (mr rows) and B strip (nr columns), then c[i*ldc+j] = float32(acc - corr[j])·sa[i]·sw[j] +
// bias[j] for the full mr×nr tile (corr is nil, read as zero, for the pairs layout).
type qgemmKernel struct {
	name   string
	layout qLayout
	micro  func(kg int, a []byte, b []int8, c []float32, ldc int, sa, sw, bias []float32, corr []int32)
}

var (
	qgemmGeneric      = &qgemmKernel{name: "generic", layout: qPairs6x16, micro: qmicroGeneric}
	qgemmGenericQuads = &qgemmKernel{name: "generic-quads", layout: qQuads12x32, micro: qmicroGenericQuads}
)

// QGemmPath names the int8 micro-kernel in use: "avx512vnni" (VPDPBUSD on zmm), "avxvnni"
// (VPDPBUSD on ymm, for CPUs with AVX-VNNI and without AVX-512), "avx2" (vpmovsxbw + vpmaddwd)
// or "generic".
func QGemmPath() string { return qgemmActive().name }

var qgemmForce *qgemmKernel // tests: force a kernel (nil: the best)

func qgemmActive() *qgemmKernel {
	if qgemmForce != nil {
		return qgemmForce
	}
	if GemmPath() == "generic" {
		return qgemmGeneric
	}
	if ks := archQgemms(); len(ks) > 0 {
		return ks[0]
	}
	return qgemmGeneric
}

// qgemmKernels lists every int8 kernel this CPU runs, the pure-Go ones included.
func qgemmKernels() []*qgemmKernel {
	return append(archQgemms(), qgemmGeneric, qgemmGenericQuads)
}

// qmicroGeneric is the pure-Go int8 micro-kernel on the pairs layout (6×16).
func qmicroGeneric(kg int, ab []byte, b []int8, c []float32, ldc int, sa, sw, bias []float32, _ []int32) {
	const mr, nr = 6, 16
	var acc [mr][nr]int32
	a := unsafe.Slice((*int16)(unsafe.Pointer(unsafe.SliceData(ab))), kg*2*mr)
	b = b[:kg*2*nr]
	for pp := range kg {
		ap := a[pp*2*mr : pp*2*mr+2*mr]
		bp := b[pp*2*nr : pp*2*nr+2*nr]
		for i := range mr {
			a0, a1 := int32(ap[2*i]), int32(ap[2*i+1])
			row := &acc[i]
			for j := range nr {
				row[j] += a0*int32(bp[2*j]) + a1*int32(bp[2*j+1])
			}
		}
	}
	for i := range mr {
		cr := c[i*ldc : i*ldc+nr]
		for j := range nr {
			cr[j] = dequant(acc[i][j], sa[i], sw[j], bias[j])
		}
	}
}

// qmicroGenericQuads is the pure-Go twin of the VNNI kernel on the quads layout (12×32): u8
// activations (qx+128) times s8 weights, then the 128·colsum correction.
func qmicroGenericQuads(kg int, a []byte, b []int8, c []float32, ldc int, sa, sw, bias []float32, corr []int32) {
	const mr, nr = 12, 32
	var acc [mr][nr]int32
	a = a[:kg*4*mr]
	b = b[:kg*4*nr]
	for q := range kg {
		ap := a[q*4*mr : q*4*mr+4*mr]
		bp := b[q*4*nr : q*4*nr+4*nr]
		for i := range mr {
			a0, a1, a2, a3 := int32(ap[4*i]), int32(ap[4*i+1]), int32(ap[4*i+2]), int32(ap[4*i+3])
			row := &acc[i]
			for j := range nr {
				row[j] += a0*int32(bp[4*j]) + a1*int32(bp[4*j+1]) + a2*int32(bp[4*j+2]) + a3*int32(bp[4*j+3])
			}
		}
	}
	for i := range mr {
		cr := c[i*ldc : i*ldc+nr]
		for j := range nr {
			cr[j] = dequant(acc[i][j]-corr[j], sa[i], sw[j], bias[j])
		}
	}
}

// dequant is the epilogue, each operation rounded to float32 in turn (no fused multiply-add).
func dequant(acc int32, sa, sw, bias float32) float32 {
	v := float32(acc) * sa
	v = float32(v * sw)
	return float32(v + bias)
}

// packQRow quantises row x (k values) and writes it as row ii of the A strip d in layout l:
// element (group q, row ii, step t) at q*g*mr + g*ii + t, as int16 (pairs) or as u8 qx+128
// (quads). Steps past k are left as they are (zero, or 128 for quads: the B padding is zero).
func packQRow(l qLayout, d []byte, q8 []int8, ii int) {
	g, mr := l.g, l.mr
	if g == 2 {
		a := unsafe.Slice((*int16)(unsafe.Pointer(unsafe.SliceData(d))), len(d)/2)
		for p, v := range q8 {
			a[(p/2)*2*mr+2*ii+p%2] = int16(v)
		}
		return
	}
	// Four steps at a time as one uint32: XOR with 0x80 adds 128 to each byte modulo 256,
	// which maps int8 v to the u8 v+128.
	k := len(q8)
	k4 := k / 4
	if k4 > 0 {
		src := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(q8))), k4)
		dst := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(d))), len(d)/4)
		_ = dst[(k4-1)*mr+ii]
		for q, v := range src {
			dst[q*mr+ii] = v ^ 0x80808080
		}
	}
	for p := 4 * k4; p < k; p++ {
		d[(p/4)*4*mr+4*ii+p%4] = byte(q8[p]) + 128
	}
}

// QLinearForward computes y = x·Wᵀ + bias (rows×n) for x (rows×k) with w quantised
// (QuantizeWeights) and x quantised per row on the fly; bias (n) may be nil.
func QLinearForward(y, x []float32, w *QuantizedB, bias []float32, rows int) {
	k, n := w.K, w.N
	if len(y) != rows*n || len(x) != rows*k || (bias != nil && len(bias) != n) {
		panic(fmt.Sprintf("kernels: QLinearForward: rows=%d k=%d n=%d but len(y)=%d len(x)=%d len(bias)=%d", rows, k, n, len(y), len(x), len(bias)))
	}
	if rows == 0 || n == 0 {
		return
	}
	if k == 0 {
		for r := range rows {
			row := y[r*n : (r+1)*n]
			clear(row)
			copy(row, bias)
		}
		return
	}
	kern := qgemmActive()
	l := kern.layout
	mr, nr := l.mr, l.nr
	pk := w.packed(l)
	bp := make([]float32, pk.npad)
	copy(bp, bias)
	kg := pk.kg
	stripA := mr * kg * l.g * l.abytes() // bytes of one packed A strip
	stripB := kg * l.g * nr
	// Row blocks of qmc rows: each goroutine quantises and packs its block of x, then sweeps
	// every column strip over it, so the block stays in L2 and a B strip in L1/L2.
	// Few rows (one short note): blocks small enough that every thread gets a share.
	qmc := min(8*mr, ceilDiv(ceilDiv(rows, Threads()), mr)*mr)
	blocks := ceilDiv(rows, qmc)
	ParallelFor(blocks, 1, func(lo, hi int) {
		ws := qworkPool.Get().(*qwork)
		defer qworkPool.Put(ws)
		ws.a = growBytes(ws.a, ceilDiv(qmc, mr)*stripA)
		ws.sa = grow(ws.sa, qmc)
		ws.q8 = growBytes(ws.q8, k)
		ws.tile = grow(ws.tile, mr*nr)
		ap, sa, tile := ws.a, ws.sa, ws.tile
		q8 := unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(ws.q8))), k)
		for blk := lo; blk < hi; blk++ {
			r0 := blk * qmc
			mb := min(qmc, rows-r0)
			strips := ceilDiv(mb, mr)
			// No clearing: the steps past k meet B's zero padding, and the rows past mb of the
			// last strip give tile rows that are not copied out (their scale is set to 0).
			clear(sa[mb:])
			for i := range mb {
				sa[i] = quantizeRow(q8, x[(r0+i)*k:(r0+i+1)*k])
				packQRow(l, ap[(i/mr)*stripA:(i/mr+1)*stripA], q8, i%mr)
			}
			for js := 0; js < n; js += nr {
				ncol := min(nr, n-js)
				bs := pk.data[(js/nr)*stripB : (js/nr+1)*stripB]
				var corr []int32
				if pk.corr != nil {
					corr = pk.corr[js:]
				}
				for s := range strips {
					as := ap[s*stripA : (s+1)*stripA]
					i0 := r0 + s*mr
					nrow := min(mr, rows-i0)
					if nrow == mr && ncol == nr {
						kern.micro(kg, as, bs, y[i0*n+js:], n, sa[s*mr:], pk.sw[js:], bp[js:], corr)
						continue
					}
					kern.micro(kg, as, bs, tile, nr, sa[s*mr:], pk.sw[js:], bp[js:], corr)
					for i := range nrow {
						copy(y[(i0+i)*n+js:(i0+i)*n+js+ncol], tile[i*nr:i*nr+ncol])
					}
				}
			}
		}
	})
}

// qwork holds one goroutine's buffers of QLinearForward, reused across calls.
type qwork struct {
	a, q8    []byte
	sa, tile []float32
}

var qworkPool = sync.Pool{New: func() any { return new(qwork) }}

// growBytes returns s resliced to n bytes, reallocating only when its capacity is short.
func growBytes(s []byte, n int) []byte {
	if cap(s) < n {
		return make([]byte, n)
	}
	return s[:n]
}

// qlinearReference is the scalar reference of QLinearForward: plain loops on the unpacked
// int8 values, the same quantisation and epilogue.
func qlinearReference(y, x []float32, w *QuantizedB, bias []float32, rows int) {
	k, n := w.K, w.N
	q8 := make([]int8, k)
	wq := w.Q()
	for i := range rows {
		sa := quantizeRowScalar(q8, x[i*k:(i+1)*k])
		for j := range n {
			var acc int32
			for p := range k {
				acc += int32(q8[p]) * int32(wq[j*k+p])
			}
			var b float32
			if bias != nil {
				b = bias[j]
			}
			y[i*n+j] = dequant(acc, sa, w.Scale[j], b)
		}
	}
}
