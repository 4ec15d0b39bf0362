package nn

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/tensor"
)

// Params is an ordered collection of named parameters.
type Params struct {
	list   []*autograd.Var
	byName map[string]*autograd.Var
}

// NewParams returns an empty collection.
func NewParams() *Params { return &Params{byName: map[string]*autograd.Var{}} }

// Add registers v under v.Name; a duplicate name panics.
func (p *Params) Add(v *autograd.Var) *autograd.Var {
	if _, dup := p.byName[v.Name]; dup {
		panic(fmt.Sprintf("nn: duplicate parameter name %q", v.Name))
	}
	p.list = append(p.list, v)
	p.byName[v.Name] = v
	return v
}

// List returns the parameters in creation order.
func (p *Params) List() []*autograd.Var { return p.list }

// Get returns the parameter called name, or nil.
func (p *Params) Get(name string) *autograd.Var { return p.byName[name] }

// Names returns the parameter names, sorted.
func (p *Params) Names() []string {
	n := make([]string, 0, len(p.list))
	for _, v := range p.list {
		n = append(n, v.Name)
	}
	sort.Strings(n)
	return n
}

// Count returns the number of scalar parameters.
func (p *Params) Count() int {
	n := 0
	for _, v := range p.list {
		n += v.Value.Len()
	}
	return n
}

// ZeroGrad zeroes every parameter's gradient.
func (p *Params) ZeroGrad() {
	for _, v := range p.list {
		v.ZeroGrad()
	}
}

// SetFrom copies tensors into the parameters of the same names, converting F16 and BF16 to
// float32. Every parameter must be present with its exact shape; the error names the source,
// the key and both shapes, for every mismatch at once. Extra tensors are ignored.
func (p *Params) SetFrom(tensors map[string]SafeTensor, source string) error {
	var errs []error
	for _, v := range p.list {
		t, ok := tensors[v.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: missing tensor %q (shape %v)", source, v.Name, v.Shape()))
			continue
		}
		if !tensor.SameShape(t.Shape, v.Shape()) {
			errs = append(errs, fmt.Errorf("%s: tensor %q has shape %v, the model expects %v", source, v.Name, t.Shape, v.Shape()))
			continue
		}
		if err := t.DecodeFloat32(v.Value.Data()); err != nil {
			errs = append(errs, fmt.Errorf("%s: tensor %q: %w", source, v.Name, err))
			continue
		}
		v.Modified()
	}
	return errors.Join(errs...)
}

// StateDict returns copies of the parameters as float32 tensors by name.
func (p *Params) StateDict() map[string]SafeTensor {
	out := make(map[string]SafeTensor, len(p.list))
	for _, v := range p.list {
		out[v.Name] = F32Tensor(v.Shape(), v.Value.Data()) // F32Tensor copies both
	}
	return out
}

// Scope names parameters under a dotted prefix and registers them in a Params.
type Scope struct {
	P      *Params
	Prefix string
}

// Root returns a scope with no prefix over p.
func Root(p *Params) Scope { return Scope{P: p} }

// Sub returns the scope prefix.name.
func (s Scope) Sub(name string) Scope {
	if s.Prefix == "" {
		return Scope{P: s.P, Prefix: name}
	}
	return Scope{P: s.P, Prefix: s.Prefix + "." + name}
}

// Name returns the full name of a parameter called name in this scope.
func (s Scope) Name(name string) string { return s.Sub(name).Prefix }

// Param creates a zeroed parameter of the given shape called prefix.name.
func (s Scope) Param(name string, shape ...int) *autograd.Var {
	return s.P.Add(autograd.NewParam(s.Name(name), tensor.New(shape...)))
}

// Linear is y = x·Wᵀ + b with W (out, in) as PyTorch stores it.
//
// For inference, Pack keeps W packed in the GEMM micro-kernel's panel layout (or Quantize keeps
// it as int8, see QuantizedLinear), and Forward on a tape that does not record then uses that
// copy instead of W. The copy remembers W.Version() and is bypassed once W is modified (the
// optimisers and Params.SetFrom mark it), so training and loading stay correct.
type Linear struct {
	W, B *autograd.Var

	packed atomic.Pointer[packedWeight]
}

// packedWeight is W packed (fp32 panels, or int8) as it was at version.
type packedWeight struct {
	fp32    *kernels.PackedB
	int8    *kernels.QuantizedB
	version uint64
}

// Pack packs W once for inference (kernels.PackB): Forward on a non-recording tape then skips
// the per-call packing of W and gives bit-identical results.
func (l *Linear) Pack() {
	out, in := l.W.Shape()[0], l.W.Shape()[1]
	l.packed.Store(&packedWeight{fp32: kernels.PackB(true, in, out, l.W.Value.Contiguous().Data(), in), version: l.W.Version()})
}

// Quantize keeps W quantised to int8 for inference (kernels.QuantizeWeights: symmetric per
// output channel); Forward on a non-recording tape then runs the int8 GEMM with activations
// quantised per token (autograd.LinearInt8). Approximate: see the accuracy tests of package bert.
func (l *Linear) Quantize() {
	out, in := l.W.Shape()[0], l.W.Shape()[1]
	l.SetQuantized(kernels.QuantizeWeights(l.W.Value.Contiguous().Data(), out, in))
}

// SetQuantized installs int8 weights (read from an int8 checkpoint) for inference, as Quantize
// does. W should hold their dequantised values so that a recording tape computes the same
// layer.
func (l *Linear) SetQuantized(q *kernels.QuantizedB) {
	l.packed.Store(&packedWeight{int8: q, version: l.W.Version()})
}

// Quantized returns the int8 copy of W, or nil.
func (l *Linear) Quantized() *kernels.QuantizedB {
	if p := l.packed.Load(); p != nil && p.version == l.W.Version() {
		return p.int8
	}
	return nil
}

// DropFloat lets go of the float weight once W is packed (Pack), for a layer that will only
// run inference on the CPU: W becomes (0, in), as in an int8 layer, and only the packed copy
// stays resident, so packing costs no memory. Forward on a recording tape, and any later
// change of W or of the GEMM micro-kernel, then has nothing to fall back on. It does nothing
// when W has no valid fp32 packed copy.
func (l *Linear) DropFloat() {
	p := l.packed.Load()
	if p == nil || p.fp32 == nil || p.version != l.W.Version() {
		return
	}
	p.fp32.DropSource()
	l.W.Value = tensor.New(0, l.W.Shape()[1])
}

// Unpack drops the packed or quantised copy of W.
func (l *Linear) Unpack() { l.packed.Store(nil) }

// PackedBytes returns the memory the packed or quantised copy of W holds (0 without one).
func (l *Linear) PackedBytes() int {
	p := l.packed.Load()
	switch {
	case p == nil:
		return 0
	case p.int8 != nil:
		return p.int8.Bytes()
	default:
		return p.fp32.Bytes()
	}
}

// inference returns the valid packed copy of W for a forward pass on tp, or nil.
func (l *Linear) inference(tp *autograd.Tape) *packedWeight {
	if tp.Recording() {
		return nil
	}
	p := l.packed.Load()
	if p == nil || p.version != l.W.Version() {
		return nil
	}
	return p
}

// NewLinear creates weight (out, in) drawn from N(0, std²) and a zero bias (when bias is set)
// under s: names s.weight and s.bias.
func NewLinear(s Scope, g *tensor.RNG, in, out int, bias bool, std float64) *Linear {
	l := &Linear{W: s.Param("weight", out, in)}
	l.W.Value.FillNormal(g, 0, std)
	if bias {
		l.B = s.Param("bias", out)
	}
	return l
}

// Forward applies the layer to x (..., in).
func (l *Linear) Forward(tp *autograd.Tape, x *autograd.Var) *autograd.Var {
	if p := l.inference(tp); p != nil {
		if p.int8 != nil {
			return tp.LinearInt8(x, p.int8, l.B)
		}
		return tp.LinearPacked(x, p.fp32, l.B)
	}
	return tp.Linear(x, l.W, l.B)
}

// ForwardGELU returns GELU(Forward(x)), the exact erf form or, when exact is false, the tanh
// form. On a tape that does not record, the activation is applied in place on the layer's
// output (the same values, one buffer fewer).
func (l *Linear) ForwardGELU(tp *autograd.Tape, x *autograd.Var, exact bool) *autograd.Var {
	if p := l.inference(tp); p != nil && p.fp32 != nil && exact && l.W.Shape()[0]%8 == 0 {
		// One product with the bias and GELU in its epilogue: the same values.
		return tp.LinearPackedGELU(x, p.fp32, l.B)
	}
	y := l.Forward(tp, x)
	if !tp.Recording() {
		return tp.GELUInPlace(y, exact)
	}
	if exact {
		return tp.GELU(y)
	}
	return tp.GELUTanh(y)
}

// Embedding is a lookup table of n vectors of size dim.
//
// Rows, when set, reads the rows of a table kept outside the process's memory (a mapped
// checkpoint, see Mapping.Rows) for Forward on a tape that does not record; W still holds the
// table (for a full read) and must have the same values.
type Embedding struct {
	W    *autograd.Var
	Rows RowSource
}

// RowSource reads rows of an embedding table: dst (len(ids)·dim) gets row ids[i] at i·dim.
// It may be called from several goroutines at once.
type RowSource interface {
	ReadRows(dst []float32, ids []int32) error
}

// NewEmbedding creates the table s.weight (n, dim) drawn from N(0, std²).
func NewEmbedding(s Scope, g *tensor.RNG, n, dim int, std float64) *Embedding {
	e := &Embedding{W: s.Param("weight", n, dim)}
	e.W.Value.FillNormal(g, 0, std)
	return e
}

// Forward returns the rows at ids, shaped shape + (dim).
func (e *Embedding) Forward(tp *autograd.Tape, ids []int32, shape ...int) *autograd.Var {
	if e.Rows == nil || tp.Recording() {
		return tp.Embedding(e.W, ids, shape...)
	}
	ws := e.W.Shape()
	if len(ws) != 2 || tensor.Numel(shape) != len(ids) {
		panic(fmt.Sprintf("nn: Embedding: %d ids for shape %v and table %v", len(ids), shape, ws))
	}
	for i, id := range ids {
		if id < 0 || int(id) >= ws[0] {
			panic(fmt.Sprintf("nn: Embedding: id %d at position %d outside vocabulary of %d", id, i, ws[0]))
		}
	}
	out := tp.AllocUninit(append(slices.Clone(shape), ws[1])...)
	if err := e.Rows.ReadRows(out.Data(), ids); err != nil {
		panic(fmt.Sprintf("nn: Embedding: reading the table's rows: %v", err))
	}
	return &autograd.Var{Value: out}
}

// LayerNorm normalises the last dimension with learned scale and shift.
type LayerNorm struct {
	Gamma, Beta *autograd.Var
	Eps         float32
}

// NewLayerNorm creates s.weight = 1 and s.bias = 0 of size dim.
func NewLayerNorm(s Scope, dim int, eps float32) *LayerNorm {
	ln := &LayerNorm{Gamma: s.Param("weight", dim), Beta: s.Param("bias", dim), Eps: eps}
	ln.Gamma.Value.Fill(1)
	return ln
}

// Forward normalises x (..., dim).
func (ln *LayerNorm) Forward(tp *autograd.Tape, x *autograd.Var) *autograd.Var {
	return tp.LayerNorm(x, ln.Gamma, ln.Beta, ln.Eps)
}

// ForwardResidual normalises x + res. On a tape that does not record, the add and the
// normalisation are one pass (autograd.AddLayerNormInPlace) that overwrites x, so x must be a
// value nothing reads afterwards; the result is bit-identical to Forward(Add(x, res)).
func (ln *LayerNorm) ForwardResidual(tp *autograd.Tape, x, res *autograd.Var) *autograd.Var {
	if !tp.Recording() {
		return tp.AddLayerNormInPlace(x, res, ln.Gamma, ln.Beta, ln.Eps)
	}
	return tp.LayerNorm(tp.Add(x, res), ln.Gamma, ln.Beta, ln.Eps)
}

// Dropout zeroes activations with probability P in training mode. Each call draws a fresh
// mask from Seed and a call counter, so a run is reproducible from its seed.
type Dropout struct {
	P    float32
	Seed uint64
	// Row0 is the index, in the batch the masks are keyed by, of the first row of the batch
	// being run (0 for a batch of its own). A data-parallel rank runs rows Row0.. of each
	// batch: keying the mask of each element by its row in the whole batch gives the rank
	// the whole batch's masks for its rows, so N ranks train as one process does. The input's
	// first dimension must be the batch.
	Row0  int
	calls atomic.Uint64
}

// NewDropout returns dropout with rate p seeded by seed.
func NewDropout(p float32, seed uint64) *Dropout { return &Dropout{P: p, Seed: seed} }

// Forward applies dropout when train is set and returns x unchanged otherwise.
func (d *Dropout) Forward(tp *autograd.Tape, x *autograd.Var, train bool) *autograd.Var {
	if !train || d.P == 0 {
		return x
	}
	var off uint64
	if d.Row0 != 0 {
		off = uint64(d.Row0) * uint64(x.Value.Len()/x.Shape()[0])
	}
	return tp.DropoutAt(x, d.P, d.NextSeed(), off, true)
}

// ForwardRows is Forward on rows gathered from a batch: x is (M, C) and its row r is row
// rows[r] (a flat position b·perSeq + t) of the (B·perSeq, C) view of the (B, perSeq, C)
// input that Forward would see. Each element gets the mask Forward would give it there, Row0
// included, so dropping out the gathered rows gives exactly the rows of the dropped-out batch.
// It draws one seed, as Forward does.
func (d *Dropout) ForwardRows(tp *autograd.Tape, x *autograd.Var, rows []int32, perSeq int, train bool) *autograd.Var {
	if !train || d.P == 0 {
		return x
	}
	off := uint64(d.Row0) * uint64(perSeq) * uint64(x.Shape()[len(x.Shape())-1])
	return tp.DropoutRows(x, d.P, d.NextSeed(), off, rows, true)
}

// NextSeed returns the seed for the next random draw and advances the counter.
func (d *Dropout) NextSeed() uint64 {
	return d.Seed*0x9e3779b97f4a7c15 + d.calls.Add(1)
}

// Calls returns how many masks have been drawn (saved in checkpoints to resume exactly).
func (d *Dropout) Calls() uint64 { return d.calls.Load() }

// SetCalls restores the draw counter.
func (d *Dropout) SetCalls(n uint64) { d.calls.Store(n) }
