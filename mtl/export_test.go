package mtl

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
	}
}
