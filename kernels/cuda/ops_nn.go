package cuda

import (
	"cmp"
	"slices"
)

// This file launches the kernels of src/nn.cu as KERNELS.md specifies them. Optional outputs
// are the zero Buffer.

// SoftmaxXent computes, for logits (n, v) and targets (n, int32), the per-row loss
// lse − logits[i, t] (0 for rows whose target is ignore) into loss (may be the zero Buffer) and,
// unless dlogits is the zero Buffer, dlogits = (softmax − onehot)·gradScale (0 for ignored rows;
// dlogits may be logits).
func (s *Stream) SoftmaxXent(loss, dlogits, logits, targets Buffer, n, v int, ignore int, gradScale float32) error {
	need("SoftmaxXent", "loss", loss, n, 4, true)
	need("SoftmaxXent", "dlogits", dlogits, n*v, 4, true)
	need("SoftmaxXent", "logits", logits, n*v, 4, false)
	need("SoftmaxXent", "targets", targets, n, 4, false)
	if n == 0 {
		return nil
	}
	return s.launch("nn", "mt_softmax_xent_f32", Dim3{n, 1, 1}, Dim3{256, 1, 1}, 0,
		Ptr(loss), Ptr(dlogits), Ptr(logits), Ptr(targets), I32(n), I32(v), I32(ignore), F32(gradScale))
}

// BiasGeluForward computes t = x + bias (bias may be the zero Buffer) over x (rows, cols) and
// writes h = t (for the backward pass), y = gelu(t) and yBF16 = bf16(gelu(t)), each optional.
func (s *Stream) BiasGeluForward(h, y, yBF16, x, bias Buffer, rows, cols int) error {
	n := rows * cols
	need("BiasGeluForward", "h", h, n, 4, true)
	need("BiasGeluForward", "y", y, n, 4, true)
	need("BiasGeluForward", "yBF16", yBF16, n, 2, true)
	need("BiasGeluForward", "x", x, n, 4, false)
	need("BiasGeluForward", "bias", bias, cols, 4, true)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("nn", "mt_bias_gelu_fwd_f32", g, b, 0, Ptr(h), Ptr(y), Ptr(yBF16), Ptr(x), Ptr(bias), I32(rows), I32(cols))
}

// BiasAdd computes t = x + bias (bias optional, cols floats) over x (rows, cols) into y
// (optional; may be x) and yBF16 = bf16(t) (optional).
func (s *Stream) BiasAdd(y, yBF16, x, bias Buffer, rows, cols int) error {
	n := rows * cols
	need("BiasAdd", "y", y, n, 4, true)
	need("BiasAdd", "yBF16", yBF16, n, 2, true)
	need("BiasAdd", "x", x, n, 4, false)
	need("BiasAdd", "bias", bias, cols, 4, true)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("nn", "mt_bias_add_f32", g, b, 0, Ptr(y), Ptr(yBF16), Ptr(x), Ptr(bias), I32(rows), I32(cols))
}

// BiasGeluBackward computes d = dy·gelu'(h) and writes dx = (accumulate ? dx : 0) + d and
// dxBF16 = bf16(d), each optional. The bias gradient is ColSumF32 of d.
func (s *Stream) BiasGeluBackward(dx, dxBF16, dy, h Buffer, rows, cols int, accumulate bool) error {
	n := rows * cols
	need("BiasGeluBackward", "dx", dx, n, 4, true)
	need("BiasGeluBackward", "dxBF16", dxBF16, n, 2, true)
	need("BiasGeluBackward", "dy", dy, n, 4, false)
	need("BiasGeluBackward", "h", h, n, 4, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("nn", "mt_bias_gelu_bwd_f32", g, b, 0, Ptr(dx), Ptr(dxBF16), Ptr(dy), Ptr(h), I32(rows), I32(cols), I32(b2i(accumulate)))
}

// LayerNormForward normalises the rows of s = x + r (r optional) for x (rows, cols): it saves
// s (optional; may be x), mean and rstd (rows, required) and writes y and yBF16 (each optional).
func (st *Stream) LayerNormForward(y, yBF16, s, mean, rstd, x, r, gamma, beta Buffer, rows, cols int, eps float32) error {
	n := rows * cols
	need("LayerNormForward", "y", y, n, 4, true)
	need("LayerNormForward", "yBF16", yBF16, n, 2, true)
	need("LayerNormForward", "s", s, n, 4, true)
	need("LayerNormForward", "mean", mean, rows, 4, false)
	need("LayerNormForward", "rstd", rstd, rows, 4, false)
	need("LayerNormForward", "x", x, n, 4, false)
	need("LayerNormForward", "r", r, n, 4, true)
	need("LayerNormForward", "gamma", gamma, cols, 4, false)
	need("LayerNormForward", "beta", beta, cols, 4, false)
	if rows == 0 {
		return nil
	}
	return st.launch("nn", "mt_layernorm_fwd_f32", Dim3{rows, 1, 1}, Dim3{256, 1, 1}, 0,
		Ptr(y), Ptr(yBF16), Ptr(s), Ptr(mean), Ptr(rstd), Ptr(x), Ptr(r), Ptr(gamma), Ptr(beta), I32(rows), I32(cols), F32(eps))
}

// LayerNormBackward writes the input gradient d = rstd·(g − mean(g) − x̂·mean(g·x̂)),
// g = dy·gamma, x̂ = (s−mean)·rstd, as dx = (accumulate ? dx : 0) + d and dxBF16 = bf16(d)
// (each optional). d is also the gradient of the residual input.
func (st *Stream) LayerNormBackward(dx, dxBF16, dy, s, mean, rstd, gamma Buffer, rows, cols int, accumulate bool) error {
	n := rows * cols
	need("LayerNormBackward", "dx", dx, n, 4, true)
	need("LayerNormBackward", "dxBF16", dxBF16, n, 2, true)
	need("LayerNormBackward", "dy", dy, n, 4, false)
	need("LayerNormBackward", "s", s, n, 4, false)
	need("LayerNormBackward", "mean", mean, rows, 4, false)
	need("LayerNormBackward", "rstd", rstd, rows, 4, false)
	need("LayerNormBackward", "gamma", gamma, cols, 4, false)
	if rows == 0 {
		return nil
	}
	return st.launch("nn", "mt_layernorm_bwd_f32", Dim3{rows, 1, 1}, Dim3{256, 1, 1}, 0,
		Ptr(dx), Ptr(dxBF16), Ptr(dy), Ptr(s), Ptr(mean), Ptr(rstd), Ptr(gamma), I32(rows), I32(cols), I32(b2i(accumulate)))
}

// layerNormRowsPerPart is the rows each partial sum of LayerNormParamsBackward covers.
const layerNormRowsPerPart = 64

// LayerNormParamsBackward accumulates dgamma += Σ_rows dy·x̂ and dbeta += Σ_rows dy, in two
// deterministic passes through a workspace from the allocator.
func (st *Stream) LayerNormParamsBackward(dgamma, dbeta, dy, s, mean, rstd Buffer, rows, cols int) error {
	n := rows * cols
	need("LayerNormParamsBackward", "dgamma", dgamma, cols, 4, false)
	need("LayerNormParamsBackward", "dbeta", dbeta, cols, 4, false)
	need("LayerNormParamsBackward", "dy", dy, n, 4, false)
	need("LayerNormParamsBackward", "s", s, n, 4, false)
	need("LayerNormParamsBackward", "mean", mean, rows, 4, false)
	need("LayerNormParamsBackward", "rstd", rstd, rows, 4, false)
	if rows == 0 || cols == 0 {
		return nil
	}
	p := ceilDiv(rows, layerNormRowsPerPart)
	part, err := st.c.alloc.Alloc(2*p*cols*4, st)
	if err != nil {
		return err
	}
	defer part.Free()
	if err := st.launch("nn", "mt_layernorm_bwd_params_partial_f32", Dim3{ceilDiv(cols, 32), p, 1}, Dim3{32, 8, 1}, 0,
		Ptr(part), Ptr(dy), Ptr(s), Ptr(mean), Ptr(rstd), I32(rows), I32(cols), I32(layerNormRowsPerPart)); err != nil {
		return err
	}
	if err := st.ColSumF32(dgamma, part, p, cols, true); err != nil {
		return err
	}
	return st.ColSumF32(dbeta, part.Slice(p*cols*4, p*cols*4), p, cols, true)
}

// EmbeddingForward gathers y[i, :] = (accumulate ? y[i, :] : 0) + table[ids[i], :] for ids
// (n, int32); a negative id gives a zero row.
func (s *Stream) EmbeddingForward(y, table, ids Buffer, n, dim int, accumulate bool) error {
	need("EmbeddingForward", "y", y, n*dim, 4, false)
	need("EmbeddingForward", "ids", ids, n, 4, false)
	if n == 0 {
		return nil
	}
	return s.launch("nn", "mt_embedding_fwd_f32", Dim3{n, 1, 1}, Dim3{128, 1, 1}, 0,
		Ptr(y), Ptr(table), Ptr(ids), I32(n), I32(dim), I32(b2i(accumulate)))
}

// EmbeddingBackward accumulates dtable[ids[i], :] += dy[i, :] deterministically, without
// atomics: hostIDs is the host copy of ids, from which the stable sort order the kernel needs
// is computed and uploaded.
func (s *Stream) EmbeddingBackward(dtable, dy, ids Buffer, hostIDs []int32, dim int) error {
	n := len(hostIDs)
	need("EmbeddingBackward", "dy", dy, n*dim, 4, false)
	need("EmbeddingBackward", "ids", ids, n, 4, false)
	if n == 0 {
		return nil
	}
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(hostIDs[a], hostIDs[b]) })
	ob, err := s.c.alloc.Alloc(4*n, s)
	if err != nil {
		return err
	}
	defer ob.Free()
	if err := Upload(s, ob, order); err != nil {
		return err
	}
	return s.launch("nn", "mt_embedding_bwd_f32", Dim3{n, 1, 1}, Dim3{128, 1, 1}, 0,
		Ptr(dtable), Ptr(dy), Ptr(ids), Ptr(ob), I32(n), I32(dim))
}
