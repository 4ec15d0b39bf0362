package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// unitRoundoff is the float32 unit roundoff 2^-24.
const unitRoundoff = 1.0 / (1 << 24)

// forEachGemmConfig runs f under every micro-kernel this CPU supports (generic included) with
// 1 and 2 threads. With 2 threads the parallel threshold is lowered so that even small shapes
// take the split path.
func forEachGemmConfig(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	oldPath, oldThreads, oldMin := GemmPath(), int(threadCount.Load()), gemmParallelMin
	defer func() {
		if err := SetGemmPath(oldPath); err != nil {
			t.Fatal(err)
		}
		SetThreads(oldThreads)
		gemmParallelMin = oldMin
	}()
	for _, p := range gemmPaths() {
		for _, th := range []int{1, 2} {
			if err := SetGemmPath(p); err != nil {
				t.Fatal(err)
			}
			SetThreads(th)
			gemmParallelMin = oldMin
			if th > 1 {
				gemmParallelMin = 64
			}
			t.Run(fmt.Sprintf("%s/threads=%d", p, th), f)
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// gemmCase is one product with its stored operands.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	lda, ldb, ldc  int
	nanC           bool // fill C with NaN (only with beta 0)
}

// checkGemmCase runs Sgemm on c and compares with gonum's blas32.Gemm.
//
// Tolerance: each entry is a length-k dot product plus the alpha and beta terms. In float32 its
// rounding error is at most γ_{k+2}·(|alpha|·Σ_p|a_ip||b_pj| + |beta||c_ij|) with
// γ_n = n·u/(1-n·u) ≈ n·u, u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms,
// §3.1), whatever the summation order. Ours and gonum's sum in different orders, so the two may
// differ by twice that bound; we allow 2·(k+3)·u·(...) per entry. A wrong or missing term is
// of the order of |a_ip||b_pj| ≈ Σ/k, far above the bound for k <= 1027.
func checkGemmCase(t *testing.T, rng *rand.Rand, tc gemmCase) {
	t.Helper()
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	a := randSlice(rng, max(1, ar*tc.lda))
	b := randSlice(rng, max(1, br*tc.ldb))
	c := randSlice(rng, max(1, tc.m*tc.ldc))
	if tc.nanC {
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	want := make([]float32, len(c))
	copy(want, c)
	if tc.nanC {
		clear(want) // gonum zeroes C for beta == 0 too; start it from zeros to be sure.
	}
	tA, tB := blas.NoTrans, blas.NoTrans
	if tc.transA {
		tA = blas.Trans
	}
	if tc.transB {
		tB = blas.Trans
	}
	if tc.m > 0 && tc.n > 0 {
		blas32.Gemm(tA, tB, tc.alpha,
			blas32.General{Rows: ar, Cols: ac, Stride: tc.lda, Data: a},
			blas32.General{Rows: br, Cols: bc, Stride: tc.ldb, Data: b},
			tc.beta, blas32.General{Rows: tc.m, Cols: tc.n, Stride: tc.ldc, Data: want})
	}
	c0 := append([]float32(nil), c...)
	Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, c, tc.ldc)
	// absA[i*k+p] = |op(A)[i][p]|, absBT[j*k+p] = |op(B)[p][j]|, for the error bound.
	absA := make([]float64, tc.m*tc.k)
	absBT := make([]float64, tc.n*tc.k)
	for p := range tc.k {
		for i := range tc.m {
			var v float32
			if tc.transA {
				v = a[p*tc.lda+i]
			} else {
				v = a[i*tc.lda+p]
			}
			absA[i*tc.k+p] = math.Abs(float64(v))
		}
		for j := range tc.n {
			var v float32
			if tc.transB {
				v = b[j*tc.ldb+p]
			} else {
				v = b[p*tc.ldb+j]
			}
			absBT[j*tc.k+p] = math.Abs(float64(v))
		}
	}
	for i := range tc.m {
		for j := range tc.ldc {
			idx := i*tc.ldc + j
			if j >= tc.n {
				if math.Float32bits(c[idx]) != math.Float32bits(c0[idx]) {
					t.Fatalf("%+v: C[%d][%d] beyond n changed: %v -> %v", tc, i, j, c0[idx], c[idx])
				}
				continue
			}
			var s float64
			ra, rb := absA[i*tc.k:(i+1)*tc.k], absBT[j*tc.k:(j+1)*tc.k]
			for p, x := range ra {
				s += x * rb[p]
			}
			bound := math.Abs(float64(tc.alpha)) * s
			if !tc.nanC {
				bound += math.Abs(float64(tc.beta) * float64(c0[idx]))
			}
			tol := 2*float64(tc.k+3)*unitRoundoff*bound + 1e-30
			got, w := float64(c[idx]), float64(want[idx])
			if math.IsNaN(got) || math.Abs(got-w) > tol {
				t.Fatalf("%+v: C[%d][%d] = %v, gonum %v, |diff| %.3g > tol %.3g", tc, i, j, got, w, math.Abs(got-w), tol)
			}
		}
	}
}

func TestSgemmAgainstGonum(t *testing.T) {
	sizes := []int{1, 2, 7, 16, 33, 65, 130}
	big := [][3]int{{1027, 33, 130}, {130, 1027, 65}, {65, 7, 1027}, {7, 1027, 1027}, {1027, 1, 16}}
	alphas := []float32{1, 0.5}
	betas := []float32{0, 1, -0.3}
	forEachGemmConfig(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		n := 0
		run := func(m, nn, k int, tA, tB bool, pad int) {
			alpha, beta := alphas[n%2], betas[(n/2)%3]
			tc := gemmCase{transA: tA, transB: tB, m: m, n: nn, k: k, alpha: alpha, beta: beta}
			tc.lda, tc.ldb, tc.ldc = k+pad, nn+2*pad, nn+3*pad
			if tA {
				tc.lda = m + pad
			}
			if tB {
				tc.ldb = k + 2*pad
			}
			tc.nanC = beta == 0 && n%4 == 0
			n++
			checkGemmCase(t, rng, tc)
		}
		for _, m := range sizes {
			for _, nn := range sizes {
				for _, k := range sizes {
					for tr := range 4 {
						run(m, nn, k, tr&1 != 0, tr&2 != 0, (m+nn+k+tr)%3)
					}
				}
			}
		}
		for _, s := range big {
			for tr := range 4 {
				run(s[0], s[1], s[2], tr&1 != 0, tr&2 != 0, 1)
			}
		}
	})
}

func TestSgemmAlphaBetaSweep(t *testing.T) {
	forEachGemmConfig(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, alpha := range []float32{1, 0.5, 0} {
			for _, beta := range []float32{0, 1, -0.3} {
				for _, nanC := range []bool{false, true} {
					if nanC && beta != 0 {
						continue
					}
					for tr := range 4 {
						tc := gemmCase{transA: tr&1 != 0, transB: tr&2 != 0, m: 37, n: 41, k: 300,
							alpha: alpha, beta: beta, lda: 301, ldb: 45, ldc: 43, nanC: nanC}
						if tc.transA {
							tc.lda = 40
						}
						if tc.transB {
							tc.ldb = 302
						}
						checkGemmCase(t, rng, tc)
					}
				}
			}
		}
	})
}

func TestSgemmZeroDims(t *testing.T) {
	forEachGemmConfig(t, func(t *testing.T) {
		// k == 0: C = beta*C, A and B may be empty.
		c := []float32{1, 2, 3, float32(math.NaN()), 5, 6}
		Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0.5, c, 3)
		if c[0] != 0.5 || c[1] != 1 || c[2] != 3 || !math.IsNaN(float64(c[3])) || c[4] != 2.5 {
			t.Fatalf("k=0 beta=0.5: got %v", c)
		}
		Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0, c, 3)
		if c[0] != 0 || c[1] != 0 || c[2] != 3 || c[3] != 0 || c[4] != 0 {
			t.Fatalf("k=0 beta=0: got %v", c)
		}
		// m == 0 or n == 0: nothing is touched.
		Sgemm(false, false, 0, 2, 3, 1, nil, 3, make([]float32, 6), 2, 0, nil, 2)
		Sgemm(false, false, 2, 0, 3, 1, make([]float32, 6), 3, nil, 1, 0, nil, 1)
	})
}

func TestSgemmStridedMatchesLoop(t *testing.T) {
	type strided struct {
		name           string
		transA, transB bool
		m, n, k, batch int
		interleave     bool // C_i as column blocks of one wide matrix (attention layout)
	}
	cases := []strided{
		{"attention-scores", false, true, 128, 128, 64, 12, false},
		{"attention-context", false, false, 33, 16, 33, 5, true},
		{"transA", true, false, 7, 9, 130, 3, false},
		{"large-few", false, false, 130, 140, 150, 2, false},
		{"one", true, true, 17, 19, 23, 1, false},
	}
	forEachGemmConfig(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, tc := range cases {
			lda, ldb := tc.k+1, tc.n+2
			if tc.transA {
				lda = tc.m + 1
			}
			if tc.transB {
				ldb = tc.k + 2
			}
			ar, br := tc.m, tc.k
			if tc.transA {
				ar = tc.k
			}
			if tc.transB {
				br = tc.n
			}
			sA, sB := ar*lda+3, br*ldb+5
			ldc, sC := tc.n+1, tc.m*(tc.n+1)+2
			if tc.interleave {
				ldc, sC = tc.n*tc.batch, tc.n
			}
			a := randSlice(rng, sA*tc.batch)
			b := randSlice(rng, sB*tc.batch)
			c := randSlice(rng, sC*(tc.batch-1)+tc.m*ldc)
			want := append([]float32(nil), c...)
			for i := range tc.batch {
				Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 0.7, a[i*sA:], lda, b[i*sB:], ldb, -0.3, want[i*sC:], ldc)
			}
			SgemmStrided(tc.transA, tc.transB, tc.m, tc.n, tc.k, 0.7, a, lda, sA, b, ldb, sB, -0.3, c, ldc, sC, tc.batch)
			// The same kernel and blocking run for each entry either way, so results are
			// bit-identical.
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s: c[%d] = %v, loop of Sgemm gives %v", tc.name, i, c[i], want[i])
				}
			}
		}
	})
}

func TestSgemmPanics(t *testing.T) {
	buf := make([]float32, 100)
	cases := []struct {
		name string
		f    func()
		want string
	}{
		{"short a", func() { Sgemm(false, false, 4, 2, 3, 1, buf[:10], 3, buf, 2, 0, buf, 2) },
			"kernels: Sgemm: len(a)=10 too short for m=4 k=3 lda=3 transA=false"},
		{"short a trans", func() { Sgemm(true, false, 4, 2, 3, 1, buf[:10], 4, buf, 2, 0, buf, 2) },
			"kernels: Sgemm: len(a)=10 too short for m=4 k=3 lda=4 transA=true"},
		{"short b", func() { Sgemm(false, true, 4, 2, 3, 1, buf, 3, buf[:5], 3, 0, buf, 2) },
			"kernels: Sgemm: len(b)=5 too short for k=3 n=2 ldb=3 transB=true"},
		{"short c", func() { Sgemm(false, false, 4, 2, 3, 1, buf, 3, buf, 2, 0, buf[:7], 2) },
			"kernels: Sgemm: len(c)=7 too short for m=4 n=2 ldc=2"},
		{"small lda", func() { Sgemm(false, false, 4, 2, 3, 1, buf, 2, buf, 2, 0, buf, 2) },
			"kernels: Sgemm: lda=2 too small for m=4 k=3 transA=false"},
		{"small ldb", func() { Sgemm(false, false, 4, 5, 3, 1, buf, 3, buf, 4, 0, buf, 5) },
			"kernels: Sgemm: ldb=4 too small for k=3 n=5 transB=false"},
		{"small ldc", func() { Sgemm(false, false, 4, 5, 3, 1, buf, 3, buf, 5, 0, buf, 4) },
			"kernels: Sgemm: ldc=4 too small for n=5"},
		{"negative", func() { Sgemm(false, false, -1, 5, 3, 1, buf, 3, buf, 5, 0, buf, 5) },
			"kernels: Sgemm: negative dimension m=-1 n=5 k=3"},
		{"strided short c", func() {
			SgemmStrided(false, false, 2, 2, 2, 1, buf, 2, 4, buf, 2, 4, 0, buf[:10], 2, 4, 3)
		}, "kernels: SgemmStrided: len(c)=10 too short for batch=3 strideC=4 m=2 n=2 ldc=2"},
		{"strided short a", func() {
			SgemmStrided(false, false, 2, 2, 2, 1, buf[:9], 2, 4, buf, 2, 4, 0, buf, 2, 4, 3)
		}, "kernels: SgemmStrided: len(a)=9 too short for batch=3 strideA=4 m=2 k=2 lda=2 transA=false"},
		{"strided negative batch", func() {
			SgemmStrided(false, false, 2, 2, 2, 1, buf, 2, 4, buf, 2, 4, 0, buf, 2, 4, -1)
		}, "kernels: SgemmStrided: negative batch=-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if !strings.HasPrefix(msg, tc.want) {
					t.Fatalf("panic %q, want prefix %q", r, tc.want)
				}
			}()
			tc.f()
		})
	}
}

func TestSetGemmPath(t *testing.T) {
	old := GemmPath()
	defer SetGemmPath(old)
	if err := SetGemmPath("generic"); err != nil || GemmPath() != "generic" {
		t.Fatalf("SetGemmPath(generic): err %v, path %q", err, GemmPath())
	}
	if err := SetGemmPath("avx512"); err == nil {
		t.Fatal("SetGemmPath(avx512) succeeded on a CPU without AVX-512 kernels")
	}
	if GemmPath() != "generic" {
		t.Fatalf("failed SetGemmPath changed the path to %q", GemmPath())
	}
}

func TestParallelForCoversOnce(t *testing.T) {
	old := int(threadCount.Load())
	defer SetThreads(old)
	for _, th := range []int{1, 2, 3, 8} {
		SetThreads(th)
		if Threads() != th {
			t.Fatalf("Threads() = %d after SetThreads(%d)", Threads(), th)
		}
		for _, tc := range []struct{ n, grain int }{{0, 1}, {1, 1}, {5, 10}, {1000, 7}, {1001, 1}} {
			hits := make([]atomic.Int32, tc.n)
			ParallelFor(tc.n, tc.grain, func(lo, hi int) {
				// Nested calls must not deadlock.
				ParallelFor(hi-lo, 1, func(l2, h2 int) {
					for i := lo + l2; i < lo+h2; i++ {
						hits[i].Add(1)
					}
				})
			})
			for i := range hits {
				if h := hits[i].Load(); h != 1 {
					t.Fatalf("threads=%d n=%d grain=%d: index %d visited %d times", th, tc.n, tc.grain, i, h)
				}
			}
		}
	}
	SetThreads(0)
	if Threads() < 1 {
		t.Fatalf("Threads() = %d with the default", Threads())
	}
}
