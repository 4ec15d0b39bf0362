package mtl

import "github.com/mtbert/mtbert/autograd"

// KindBehaviours reports, for a registered kind, which of its table's behaviours are set
// (for kinds_test.go); nil for an unknown kind.
func KindBehaviours(k Kind) map[string]bool {
	h, ok := kindOf[k]
	if !ok {
		return nil
	}
	return map[string]bool{
		"outputs":    h.outputs != nil,
		"newHead":    h.newHead != nil,
		"loss":       h.loss != nil,
		"eval":       h.eval != nil,
		"decodePair": h.decodePair != nil,
		"labels":     h.labels != 0,
		"input":      h.input != 0,
		"rows":       h.rows != nil,
	}
}

// LossWholeEncoder is Model.Loss from the whole encoder's output (bert.Model.Forward), never
// from ForwardRows: the reference the row-wise path is compared with.
func (m *Model) LossWholeEncoder(tp *autograd.Tape, h *Head, b *Batch, train bool) (*autograd.Var, error) {
	out, err := m.Encoder.Forward(tp, b.Enc, train)
	if err != nil {
		return nil, err
	}
	return h.Spec.Kind.hk().loss(tp, m, h, out, b, train)
}
