package bert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// This file is a minimal, safe unpickler for the data.pkl of a torch.save checkpoint. It is a
// stack machine over the opcodes such files use (protocol 2, plus FRAME and the short string
// forms of later protocols); it never executes anything. A GLOBAL outside a small allowlist is
// refused as soon as it is read, and REDUCE calls only the allowlisted callables, implemented
// here in Go. Every length read from the input is checked against what remains of the input,
// so memory stays proportional to the input size.

// pyGlobal is a module-level name loaded by GLOBAL or STACK_GLOBAL, e.g. torch.FloatStorage.
type pyGlobal struct{ module, name string }

func (g pyGlobal) String() string { return g.module + "." + g.name }

// pyNone is Python's None.
type pyNone struct{}

// pyTuple is an immutable tuple.
type pyTuple []any

// pyList is a mutable list.
type pyList struct{ items []any }

// pyDict is a dict or OrderedDict; items keep insertion order.
type pyDict struct {
	keys  []any
	vals  []any
	index map[string]int // position of each string key
}

func newDict() *pyDict { return &pyDict{index: map[string]int{}} }

func (d *pyDict) set(k, v any) {
	if s, ok := k.(string); ok {
		if i, ok := d.index[s]; ok {
			d.vals[i] = v
			return
		}
		d.index[s] = len(d.keys)
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

// pyMark is the marker MARK pushes.
type pyMark struct{}

// allowedGlobals is the allowlist of names a checkpoint pickle may load. Storage classes are
// only meaningful inside a persistent id; the rebuild functions and OrderedDict may be called
// by REDUCE.
var allowedGlobals = map[pyGlobal]bool{
	{"collections", "OrderedDict"}:                    true,
	{"torch._utils", "_rebuild_tensor_v2"}:            true,
	{"torch._utils", "_rebuild_parameter"}:            true,
	{"torch._utils", "_rebuild_parameter_with_state"}: true,
	{"torch", "FloatStorage"}:                         true,
	{"torch", "HalfStorage"}:                          true,
	{"torch", "BFloat16Storage"}:                      true,
	{"torch", "LongStorage"}:                          true,
	{"torch", "IntStorage"}:                           true,
	{"torch", "DoubleStorage"}:                        true,
	{"torch", "ShortStorage"}:                         true,
	{"torch", "CharStorage"}:                          true,
	{"torch", "ByteStorage"}:                          true,
	{"torch", "BoolStorage"}:                          true,
}

// reducer implements the allowlisted callables of REDUCE.
type reducer func(args pyTuple) (any, error)

// Unpickler limits.
const (
	maxPickleStack = 1 << 20 // values on the stack, all marks together
	maxPickleMemo  = 1 << 20 // memo entries
)

// unpickler is the state of one run.
type unpickler struct {
	data   []byte
	pos    int
	stack  []any
	marks  []int // stack heights at each MARK
	memo   map[uint32]any
	pload  func(pid any) (any, error)
	reduce func(fn pyGlobal, args pyTuple) (any, error)
}

// unpickle runs the pickle in data and returns the object STOP leaves on top of the stack.
// persistentLoad resolves BINPERSID ids; reduce implements REDUCE for allowlisted globals.
func unpickle(data []byte, persistentLoad func(pid any) (any, error), reduce func(fn pyGlobal, args pyTuple) (any, error)) (any, error) {
	u := &unpickler{data: data, memo: map[uint32]any{}, pload: persistentLoad, reduce: reduce}
	return u.run()
}

var errTruncated = errors.New("pickle: truncated input")

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, errTruncated
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) readLine() (string, error) {
	for i := u.pos; i < len(u.data); i++ {
		if u.data[i] == '\n' {
			s := string(u.data[u.pos:i])
			u.pos = i + 1
			return s, nil
		}
	}
	return "", errTruncated
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= maxPickleStack {
		return fmt.Errorf("pickle: stack deeper than %d", maxPickleStack)
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || u.topIsMarkBoundary() {
		return nil, errors.New("pickle: stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

// topIsMarkBoundary reports whether the top of the stack belongs below the last mark, i.e.
// the current mark frame is empty.
func (u *unpickler) topIsMarkBoundary() bool {
	return len(u.marks) > 0 && len(u.stack) == u.marks[len(u.marks)-1]
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 || u.topIsMarkBoundary() {
		return nil, errors.New("pickle: stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark pops everything above the last MARK and the mark itself.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("pickle: no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := make([]any, len(u.stack)-m)
	copy(items, u.stack[m:])
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) string(b []byte, op string) (string, error) {
	if !utf8.Valid(b) {
		return "", fmt.Errorf("pickle: %s string is not valid UTF-8", op)
	}
	return string(b), nil
}

func (u *unpickler) memoPut(idx uint32) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[idx]; !ok && len(u.memo) >= maxPickleMemo {
		return fmt.Errorf("pickle: memo larger than %d entries", maxPickleMemo)
	}
	u.memo[idx] = v
	return nil
}

func (u *unpickler) memoGet(idx uint32) error {
	v, ok := u.memo[idx]
	if !ok {
		return fmt.Errorf("pickle: memo key %d not set", idx)
	}
	return u.push(v)
}

func (u *unpickler) global(module, name string) error {
	g := pyGlobal{module, name}
	if !allowedGlobals[g] {
		return fmt.Errorf("pickle: refusing global %s", g)
	}
	return u.push(g)
}

// opName gives the pickletools name of the opcodes this reader refuses, for error messages.
var opNames = map[byte]string{
	'i': "INST", 'o': "OBJ", '\x81': "NEWOBJ", '\x92': "NEWOBJ_EX", 'c': "GLOBAL",
	'R': "REDUCE", 'P': "PERSID", '\x82': "EXT1", '\x83': "EXT2", '\x84': "EXT4",
	'I': "INT", 'L': "LONG", 'F': "FLOAT", 'S': "STRING", 'V': "UNICODE", 'p': "PUT", 'g': "GET",
	'l': "LIST", 'd': "DICT", '0': "POP", '1': "POP_MARK", '2': "DUP", 'B': "BINBYTES",
	'C': "SHORT_BINBYTES", '\x8e': "BINBYTES8", '\x8f': "EMPTY_SET", '\x90': "ADDITEMS",
	'\x91': "FROZENSET", '\x8b': "LONG4", '\x96': "BYTEARRAY8", '\x97': "NEXT_BUFFER",
	'\x98': "READONLY_BUFFER",
}

func (u *unpickler) run() (any, error) {
	for {
		if u.pos >= len(u.data) {
			return nil, errors.New("pickle: input ends without STOP")
		}
		at := u.pos
		op := u.data[u.pos]
		u.pos++
		if err := u.step(op); err != nil {
			if err == errStop {
				if len(u.marks) != 0 {
					return nil, errors.New("pickle: STOP with an open MARK")
				}
				if len(u.stack) != 1 {
					return nil, fmt.Errorf("pickle: STOP with %d values on the stack, want 1", len(u.stack))
				}
				return u.stack[0], nil
			}
			return nil, fmt.Errorf("%w (opcode 0x%02x at byte %d)", err, op, at)
		}
	}
}

var errStop = errors.New("pickle: STOP")

func (u *unpickler) step(op byte) error {
	switch op {
	case '\x80': // PROTO
		b, err := u.read(1)
		if err != nil {
			return err
		}
		if b[0] < 2 || b[0] > 5 {
			return fmt.Errorf("pickle: unsupported protocol %d", b[0])
		}
	case '\x95': // FRAME: an 8-byte length; frames are only a hint for buffered readers
		b, err := u.read(8)
		if err != nil {
			return err
		}
		if binary.LittleEndian.Uint64(b) > uint64(len(u.data)-u.pos) {
			return errTruncated
		}
	case '.': // STOP
		return errStop
	case '}': // EMPTY_DICT
		return u.push(newDict())
	case ']': // EMPTY_LIST
		return u.push(&pyList{})
	case ')': // EMPTY_TUPLE
		return u.push(pyTuple{})
	case '(': // MARK
		if len(u.marks) >= maxPickleStack {
			return fmt.Errorf("pickle: more than %d open marks", maxPickleStack)
		}
		u.marks = append(u.marks, len(u.stack))
	case 't': // TUPLE
		items, err := u.popMark()
		if err != nil {
			return err
		}
		return u.push(pyTuple(items))
	case '\x85', '\x86', '\x87': // TUPLE1, TUPLE2, TUPLE3
		n := int(op-'\x85') + 1
		t := make(pyTuple, n)
		for i := n - 1; i >= 0; i-- {
			v, err := u.pop()
			if err != nil {
				return err
			}
			t[i] = v
		}
		return u.push(t)
	case 'X': // BINUNICODE
		b, err := u.read(4)
		if err != nil {
			return err
		}
		return u.pushString(int64(binary.LittleEndian.Uint32(b)), "BINUNICODE")
	case '\x8c': // SHORT_BINUNICODE
		b, err := u.read(1)
		if err != nil {
			return err
		}
		return u.pushString(int64(b[0]), "SHORT_BINUNICODE")
	case '\x8d': // BINUNICODE8
		b, err := u.read(8)
		if err != nil {
			return err
		}
		n := binary.LittleEndian.Uint64(b)
		if n > uint64(len(u.data)) {
			return errTruncated
		}
		return u.pushString(int64(n), "BINUNICODE8")
	case 'U': // SHORT_BINSTRING: bytes decoded as latin-1 by Python 3's default
		b, err := u.read(1)
		if err != nil {
			return err
		}
		return u.pushLatin1(int(b[0]))
	case 'T': // BINSTRING
		b, err := u.read(4)
		if err != nil {
			return err
		}
		n := int32(binary.LittleEndian.Uint32(b))
		if n < 0 {
			return fmt.Errorf("pickle: BINSTRING negative length %d", n)
		}
		return u.pushLatin1(int(n))
	case 'J': // BININT
		b, err := u.read(4)
		if err != nil {
			return err
		}
		return u.push(int64(int32(binary.LittleEndian.Uint32(b))))
	case 'K': // BININT1
		b, err := u.read(1)
		if err != nil {
			return err
		}
		return u.push(int64(b[0]))
	case 'M': // BININT2
		b, err := u.read(2)
		if err != nil {
			return err
		}
		return u.push(int64(binary.LittleEndian.Uint16(b)))
	case '\x8a': // LONG1: little-endian two's complement of n bytes
		b, err := u.read(1)
		if err != nil {
			return err
		}
		n := int(b[0])
		if n > 8 {
			return fmt.Errorf("pickle: LONG1 of %d bytes does not fit in int64", n)
		}
		v, err := u.read(n)
		if err != nil {
			return err
		}
		var x uint64
		for i := n - 1; i >= 0; i-- {
			x = x<<8 | uint64(v[i])
		}
		if n > 0 && n < 8 && v[n-1]&0x80 != 0 { // sign-extend
			x |= ^uint64(0) << (8 * uint(n))
		}
		return u.push(int64(x))
	case 'G': // BINFLOAT: big-endian float64
		b, err := u.read(8)
		if err != nil {
			return err
		}
		return u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case '\x88': // NEWTRUE
		return u.push(true)
	case '\x89': // NEWFALSE
		return u.push(false)
	case 'N': // NONE
		return u.push(pyNone{})
	case 'c': // GLOBAL
		module, err := u.readLine()
		if err != nil {
			return err
		}
		name, err := u.readLine()
		if err != nil {
			return err
		}
		return u.global(module, name)
	case '\x93': // STACK_GLOBAL
		nv, err := u.pop()
		if err != nil {
			return err
		}
		mv, err := u.pop()
		if err != nil {
			return err
		}
		module, ok1 := mv.(string)
		name, ok2 := nv.(string)
		if !ok1 || !ok2 {
			return fmt.Errorf("pickle: STACK_GLOBAL of %s and %s, want two strings", typeName(mv), typeName(nv))
		}
		return u.global(module, name)
	case 'R': // REDUCE
		argv, err := u.pop()
		if err != nil {
			return err
		}
		fv, err := u.pop()
		if err != nil {
			return err
		}
		fn, ok := fv.(pyGlobal)
		if !ok {
			return fmt.Errorf("pickle: REDUCE on a %s, want an allowlisted global", typeName(fv))
		}
		args, ok := argv.(pyTuple)
		if !ok {
			return fmt.Errorf("pickle: REDUCE %s with %s arguments, want a tuple", fn, typeName(argv))
		}
		var v any
		if fn == (pyGlobal{"collections", "OrderedDict"}) {
			if len(args) != 0 {
				return fmt.Errorf("pickle: collections.OrderedDict called with %d arguments, want 0", len(args))
			}
			v = newDict()
		} else {
			if u.reduce == nil {
				return fmt.Errorf("pickle: refusing to call %s", fn)
			}
			if v, err = u.reduce(fn, args); err != nil {
				return err
			}
		}
		return u.push(v)
	case 'b': // BUILD: sets state on the object below; only dicts, whose state is ignored
		state, err := u.pop()
		if err != nil {
			return err
		}
		obj, err := u.top()
		if err != nil {
			return err
		}
		if _, ok := obj.(*pyDict); !ok {
			return fmt.Errorf("pickle: BUILD on a %s, only dicts are allowed", typeName(obj))
		}
		_ = state // OrderedDict state such as a state dict's _metadata: not needed
	case 's': // SETITEM
		v, err := u.pop()
		if err != nil {
			return err
		}
		k, err := u.pop()
		if err != nil {
			return err
		}
		d, err := u.topDict("SETITEM")
		if err != nil {
			return err
		}
		d.set(k, v)
	case 'u': // SETITEMS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		if len(items)%2 != 0 {
			return fmt.Errorf("pickle: SETITEMS with an odd number (%d) of values", len(items))
		}
		d, err := u.topDict("SETITEMS")
		if err != nil {
			return err
		}
		for i := 0; i < len(items); i += 2 {
			d.set(items[i], items[i+1])
		}
	case 'a': // APPEND
		v, err := u.pop()
		if err != nil {
			return err
		}
		l, err := u.topList("APPEND")
		if err != nil {
			return err
		}
		l.items = append(l.items, v)
	case 'e': // APPENDS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		l, err := u.topList("APPENDS")
		if err != nil {
			return err
		}
		l.items = append(l.items, items...)
	case 'q': // BINPUT
		b, err := u.read(1)
		if err != nil {
			return err
		}
		return u.memoPut(uint32(b[0]))
	case 'r': // LONG_BINPUT
		b, err := u.read(4)
		if err != nil {
			return err
		}
		return u.memoPut(binary.LittleEndian.Uint32(b))
	case '\x94': // MEMOIZE
		return u.memoPut(uint32(len(u.memo)))
	case 'h': // BINGET
		b, err := u.read(1)
		if err != nil {
			return err
		}
		return u.memoGet(uint32(b[0]))
	case 'j': // LONG_BINGET
		b, err := u.read(4)
		if err != nil {
			return err
		}
		return u.memoGet(binary.LittleEndian.Uint32(b))
	case 'Q': // BINPERSID
		pid, err := u.pop()
		if err != nil {
			return err
		}
		if u.pload == nil {
			return errors.New("pickle: persistent id without a loader")
		}
		v, err := u.pload(pid)
		if err != nil {
			return err
		}
		return u.push(v)
	default:
		if name, ok := opNames[op]; ok {
			return fmt.Errorf("pickle: refusing opcode %s", name)
		}
		return fmt.Errorf("pickle: unknown opcode 0x%02x", op)
	}
	return nil
}

func (u *unpickler) pushString(n int64, op string) error {
	if n > int64(len(u.data)-u.pos) {
		return errTruncated
	}
	b, err := u.read(int(n))
	if err != nil {
		return err
	}
	s, err := u.string(b, op)
	if err != nil {
		return err
	}
	return u.push(s)
}

func (u *unpickler) pushLatin1(n int) error {
	b, err := u.read(n)
	if err != nil {
		return err
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return u.push(string(r))
}

func (u *unpickler) topDict(op string) (*pyDict, error) {
	v, err := u.top()
	if err != nil {
		return nil, err
	}
	d, ok := v.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("pickle: %s on a %s, want a dict", op, typeName(v))
	}
	return d, nil
}

func (u *unpickler) topList(op string) (*pyList, error) {
	v, err := u.top()
	if err != nil {
		return nil, err
	}
	l, ok := v.(*pyList)
	if !ok {
		return nil, fmt.Errorf("pickle: %s on a %s, want a list", op, typeName(v))
	}
	return l, nil
}

// typeName names the Python type of a decoded value, for error messages. It never prints the
// value itself, which may be large or cyclic.
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case pyNone:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case pyTuple:
		return "tuple of " + strconv.Itoa(len(v))
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case pyGlobal:
		return "global " + v.String()
	case *torchStorage:
		return "storage"
	case *torchTensor:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}
