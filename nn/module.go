package nn

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/mtbert/mtbert/autograd"
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
		f, err := t.Float32()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: tensor %q: %w", source, v.Name, err))
			continue
		}
		copy(v.Value.Data(), f)
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
type Linear struct {
	W, B *autograd.Var
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
	return tp.Linear(x, l.W, l.B)
}

// Embedding is a lookup table of n vectors of size dim.
type Embedding struct {
	W *autograd.Var
}

// NewEmbedding creates the table s.weight (n, dim) drawn from N(0, std²).
func NewEmbedding(s Scope, g *tensor.RNG, n, dim int, std float64) *Embedding {
	e := &Embedding{W: s.Param("weight", n, dim)}
	e.W.Value.FillNormal(g, 0, std)
	return e
}

// Forward returns the rows at ids, shaped shape + (dim).
func (e *Embedding) Forward(tp *autograd.Tape, ids []int32, shape ...int) *autograd.Var {
	return tp.Embedding(e.W, ids, shape...)
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

// NextSeed returns the seed for the next random draw and advances the counter.
func (d *Dropout) NextSeed() uint64 {
	return d.Seed*0x9e3779b97f4a7c15 + d.calls.Add(1)
}

// Calls returns how many masks have been drawn (saved in checkpoints to resume exactly).
func (d *Dropout) Calls() uint64 { return d.calls.Load() }

// SetCalls restores the draw counter.
func (d *Dropout) SetCalls(n uint64) { d.calls.Store(n) }
