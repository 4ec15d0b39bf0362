package bert

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/nn"
)

// The files under testdata/torchbin were written by make_bins.py with Debian's python3-torch
// 1.13.1; expected.json holds what torch itself reported for each tensor.

type expectedTensor struct {
	Shape   []int    `json:"shape"`
	DType   string   `json:"dtype"`
	F32Bits []uint32 `json:"f32bits"`
	Raw16   []uint16 `json:"raw16"`
	Ints    []int64  `json:"ints"`
}

func loadExpected(t *testing.T) map[string]expectedTensor {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "torchbin", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp map[string]expectedTensor
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

// TestReadTorchBinGolden reads the same state dict saved by torch in the zip format and in
// the legacy (pre-1.6) format, and checks both against what torch reported.
func TestReadTorchBinGolden(t *testing.T) {
	for _, file := range []string{"golden.bin", "legacy_golden.bin"} {
		t.Run(file, func(t *testing.T) { checkGolden(t, file) })
	}
}

func checkGolden(t *testing.T, file string) {
	exp := loadExpected(t)
	got, err := ReadTorchBin(filepath.Join("testdata", "torchbin", file))
	if err != nil {
		t.Fatal(err)
	}
	var gotNames, wantNames []string
	for k := range got {
		gotNames = append(gotNames, k)
	}
	for k := range exp {
		wantNames = append(wantNames, k)
	}
	sort.Strings(gotNames)
	sort.Strings(wantNames)
	if !reflect.DeepEqual(gotNames, wantNames) {
		t.Fatalf("names %v, want %v", gotNames, wantNames)
	}
	for name, e := range exp {
		g := got[name]
		if g.DType.String() != e.DType {
			t.Errorf("%s: dtype %v, want %s", name, g.DType, e.DType)
		}
		if len(g.Shape) != len(e.Shape) || (len(e.Shape) > 0 && !reflect.DeepEqual(g.Shape, e.Shape)) {
			t.Errorf("%s: shape %v, want %v", name, g.Shape, e.Shape)
		}
		switch g.DType {
		case kernels.F32, kernels.F16, kernels.BF16:
			v, err := g.Float32()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if len(v) != len(e.F32Bits) {
				t.Errorf("%s: %d values, want %d", name, len(v), len(e.F32Bits))
				continue
			}
			for i := range v {
				if math.Float32bits(v[i]) != e.F32Bits[i] {
					t.Errorf("%s[%d] = %#08x, want %#08x", name, i, math.Float32bits(v[i]), e.F32Bits[i])
				}
			}
			if g.DType != kernels.F32 {
				raw := make([]byte, 2*len(e.Raw16))
				for i, h := range e.Raw16 {
					binary.LittleEndian.PutUint16(raw[2*i:], h)
				}
				if !bytes.Equal(g.Data, raw) {
					t.Errorf("%s: raw bytes % x, want % x", name, g.Data, raw)
				}
			}
		default:
			v, err := g.Int64()
			if err != nil || !reflect.DeepEqual(v, e.Ints) {
				t.Errorf("%s = %v (%v), want %v", name, v, err, e.Ints)
			}
		}
	}
	// The views, checked against the base tensor independently of torch's dump.
	base, _ := got["bert.base"].Float32()     // [3,4]
	tr, _ := got["bert.transposed"].Float32() // [4,3]
	for i := range 3 {
		for j := range 4 {
			if tr[j*3+i] != base[i*4+j] {
				t.Errorf("transposed[%d,%d] = %v, want base[%d,%d] = %v", j, i, tr[j*3+i], i, j, base[i*4+j])
			}
		}
	}
	off, _ := got["bert.offset"].Float32()
	if !reflect.DeepEqual(off, base[5:9]) {
		t.Errorf("offset view %v, want base[5:9] = %v", off, base[5:9])
	}
	// Formula check of one F32 tensor: 0.02*sin(0.37*i + 0), rounded to float32.
	w, _ := got["bert.embeddings.word_embeddings.weight"].Float32()
	for i, x := range w {
		if want := float32(0.02 * math.Sin(0.37*float64(i))); x != want {
			t.Errorf("word_embeddings[%d] = %v, want %v", i, x, want)
		}
	}
}

func TestReadTorchBinBadFiles(t *testing.T) {
	dir := filepath.Join("testdata", "torchbin")
	tests := []struct {
		file string
		want string
	}{
		{"hostile.bin", "hostile/data.pkl: pickle: refusing global os.system"},
		{"hostile_stack.bin", "pickle: refusing global builtins.eval"},
		{"truncated.bin", "not a torch.save zip archive or legacy torch.save file"},
		{"short_storage.bin", `tensor "w": storage "0" holds 12 bytes, want 24 (6 elements of F32)`},
		{"legacy_hostile.bin", "torchbin: legacy torch.save file: state dict pickle at byte 137: pickle: refusing global os.system"},
		{"expected.json", "not a torch.save zip archive or legacy torch.save file"},
	}
	for _, tc := range tests {
		path := filepath.Join(dir, tc.file)
		_, err := ReadTorchBin(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), path+": ") {
			t.Errorf("%s: error %v, want %q prefixed with the path", tc.file, err, tc.want)
		}
	}
	if _, err := ReadTorchBin(filepath.Join(dir, "missing.bin")); err == nil {
		t.Error("missing file: no error")
	}
}

// buildZip writes a torch.save-like archive with prefix "archive" from a pickle and storage
// files.
func buildZip(t *testing.T, pkl []byte, storages map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	add("archive/data.pkl", pkl)
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add("archive/data/"+k, storages[k])
	}
	add("archive/version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pk assembles pickle bytes from opcode strings.
func pk(parts ...string) []byte { return []byte(strings.Join(parts, "")) }

// uni is a BINUNICODE opcode for s.
func uni(s string) string {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	return "X" + string(n[:]) + s
}

// tensorPickle is a one-entry state dict {name: _rebuild_tensor_v2(('storage', class, key,
// 'cpu', numel), offset, size, stride, False, OrderedDict())} as torch 1.13 writes it.
func tensorPickle(name, class, key string, numel, offset int, size, stride []int) []byte {
	tup := func(v []int) string {
		s := "("
		for _, x := range v {
			s += "J" + string(binary.LittleEndian.AppendUint32(nil, uint32(x)))
		}
		return s + "t"
	}
	return pk("\x80\x02", "ccollections\nOrderedDict\n", ")R", "(", uni(name),
		"ctorch._utils\n_rebuild_tensor_v2\n",
		"((", uni("storage"), "ctorch\n"+class+"\n", uni(key), uni("cpu"),
		"J"+string(binary.LittleEndian.AppendUint32(nil, uint32(numel))), "tQ",
		"J"+string(binary.LittleEndian.AppendUint32(nil, uint32(offset))),
		tup(size), tup(stride), "\x89", "ccollections\nOrderedDict\n)R", "tR", "u.")
}

func f32le(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func readZipBytes(b []byte) (map[string]nn.SafeTensor, error) {
	return ReadTorchBinReaderAt(bytes.NewReader(b), int64(len(b)))
}

func TestReadTorchBinViews(t *testing.T) {
	stor := map[string][]byte{"0": f32le(0, 1, 2, 3, 4, 5)}
	tests := []struct {
		name         string
		numel        int
		offset       int
		size, stride []int
		want         []float32
		err          string
	}{
		{name: "contiguous", numel: 6, size: []int{2, 3}, stride: []int{3, 1}, want: []float32{0, 1, 2, 3, 4, 5}},
		{name: "transposed", numel: 6, size: []int{3, 2}, stride: []int{1, 3}, want: []float32{0, 3, 1, 4, 2, 5}},
		{name: "offset", numel: 6, offset: 4, size: []int{2}, stride: []int{1}, want: []float32{4, 5}},
		{name: "size-1 dim any stride", numel: 6, offset: 1, size: []int{1, 2}, stride: []int{99, 1}, want: []float32{1, 2}},
		{name: "expanded", numel: 6, offset: 2, size: []int{2, 2}, stride: []int{0, 1}, want: []float32{2, 3, 2, 3}},
		{name: "0-d", numel: 6, offset: 5, size: []int{}, stride: []int{}, want: []float32{5}},
		{name: "empty", numel: 6, offset: 6, size: []int{0, 4}, stride: []int{4, 1}, want: []float32{}},
		{name: "past end", numel: 6, offset: 3, size: []int{2, 2}, stride: []int{2, 1}, err: `tensor "x": view (offset 3, size [2 2], stride [2 1]) reaches element 6 of storage "0", which holds 6 elements`},
		{name: "storage size mismatch", numel: 7, size: []int{2}, stride: []int{1}, err: `tensor "x": storage "0" holds 24 bytes, want 28 (7 elements of F32)`},
		{name: "expanded too large", numel: 6, size: []int{1 << 20, 1 << 10}, stride: []int{0, 0}, err: "exceeds the 268435456-byte limit"},
	}
	for _, tc := range tests {
		b := buildZip(t, tensorPickle("x", "FloatStorage", "0", tc.numel, tc.offset, tc.size, tc.stride), stor)
		got, err := readZipBytes(b)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		v, err := got["x"].Float32()
		if err != nil || !reflect.DeepEqual(v, tc.want) || !reflect.DeepEqual(got["x"].Shape, tc.size) {
			t.Errorf("%s: got %v shape %v (%v), want %v shape %v", tc.name, v, got["x"].Shape, err, tc.want, tc.size)
		}
	}
}

func TestReadTorchBinStructure(t *testing.T) {
	good := tensorPickle("x", "FloatStorage", "0", 2, 0, []int{2}, []int{1})
	tests := []struct {
		name     string
		pkl      []byte
		storages map[string][]byte
		want     string
	}{
		{"missing storage", good, nil, `tensor "x": storage file archive/data/0 is missing`},
		{"double storage", tensorPickle("x", "DoubleStorage", "0", 1, 0, []int{1}, []int{1}), map[string][]byte{"0": make([]byte, 8)}, `tensor "x": storage type torch.DoubleStorage is not supported`},
		{"unknown storage class", tensorPickle("x", "QStorage", "0", 1, 0, []int{1}, []int{1}), nil, "pickle: refusing global torch.QStorage"},
		{"top level list", pk("\x80\x02](K\x01e."), nil, "top-level object is a list, want a state dict"},
		{"non-tensor value", pk("\x80\x02}", uni("a"), "K\x01s."), nil, `state dict entry "a" is a int, want a tensor`},
		{"int key", pk("\x80\x02}K\x01K\x01s."), nil, "state dict key 0 is a int, want a string"},
		{"bad persistent id", pk("\x80\x02}", uni("a"), uni("x"), "Qs."), nil, "persistent id is a str"},
		{"persistent id wrong tag", pk("\x80\x02}", uni("a"), "(", uni("file"), "ctorch\nFloatStorage\n", uni("0"), uni("cpu"), "K\x01tQs."), nil, "is not ('storage', class, key, location, numel)"},
		{"storage class not storage", pk("\x80\x02}", uni("a"), "(", uni("storage"), "ccollections\nOrderedDict\n", uni("0"), uni("cpu"), "K\x01tQs."), nil, "class collections.OrderedDict is not a torch storage"},
		{"storage redeclared", pk("\x80\x02(", uni("storage"), "ctorch\nFloatStorage\n", uni("0"), uni("cpu"), "K\x01tQ(", uni("storage"), "ctorch\nHalfStorage\n", uni("0"), uni("cpu"), "K\x01tQ\x86."), nil, `storage "0": declared as torch.FloatStorage of 1 elements and as torch.HalfStorage of 1`},
		{"rebuild wrong arity", pk("\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)R."), nil, "_rebuild_tensor_v2 called with 0 arguments, want 6 or 7"},
		{"rebuild not storage", pk("\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(K\x00K\x00)))\x89}tR."), nil, "storage argument is a int"},
		{"parameter of int", pk("\x80\x02ctorch._utils\n_rebuild_parameter\n(K\x01\x89}tR."), nil, "data argument is a int, want a tensor"},
		{"call storage class", pk("\x80\x02ctorch\nFloatStorage\n)R."), nil, "pickle: refusing to call torch.FloatStorage"},
		{"well formed", good, map[string][]byte{"0": f32le(1, 2)}, ""},
	}
	for _, tc := range tests {
		b := buildZip(t, tc.pkl, tc.storages)
		_, err := readZipBytes(b)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}

	// A big-endian archive is refused.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string][]byte{"a/data.pkl": good, "a/data/0": f32le(1, 2), "a/byteorder": []byte("big")} {
		w, _ := zw.Create(name)
		w.Write(data)
	}
	zw.Close()
	if _, err := readZipBytes(buf.Bytes()); err == nil || !strings.Contains(err.Error(), `byte order "big" is not supported`) {
		t.Errorf("big-endian: error %v", err)
	}

	// A storage whose bytes do not match the zip CRC is refused.
	b := buildZip(t, good, map[string][]byte{"0": f32le(1, 2)})
	i := bytes.Index(b, f32le(1, 2))
	b[i] ^= 1
	if _, err := readZipBytes(b); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("corrupted storage: error %v, want a checksum error", err)
	}
}

func TestUnpickle(t *testing.T) {
	tests := []struct {
		name string
		pkl  []byte
		want any
		err  string
	}{
		{"ints", pk("\x80\x02(K\xffM\x01\x02J\xff\xff\xff\xff\x8a\x01\xff\x8a\x02\x00\x80\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8a\x00t."),
			pyTuple{int64(255), int64(0x0201), int64(-1), int64(-1), int64(-32768), int64(math.MinInt64), int64(0)}, ""},
		{"float and consts", pk("\x80\x02(G\x3f\xf8\x00\x00\x00\x00\x00\x00\x88\x89Nt."), pyTuple{1.5, true, false, pyNone{}}, ""},
		{"strings", pk("\x80\x04\x95\x1b\x00\x00\x00\x00\x00\x00\x00(\x8c\x02\xc3\xa9", "\x8d\x01\x00\x00\x00\x00\x00\x00\x00z", "U\x02\xe9a", "T\x01\x00\x00\x00b", "t."),
			pyTuple{"\u00e9", "z", "\u00e9a", "b"}, ""}, // SHORT_BINSTRING/BINSTRING bytes read as latin-1
		{"short unicode not utf8", pk("\x80\x04\x8c\x02h\xc3."), nil, "SHORT_BINUNICODE string is not valid UTF-8"},
		{"memo", pk("\x80\x02", uni("a"), "q\x07\x94", "r\x09\x00\x00\x00", "h\x07h\x01j\x09\x00\x00\x00\x87\x86."), pyTuple{"a", pyTuple{"a", "a", "a"}}, ""},
		{"list", pk("\x80\x02]K\x01a(K\x02K\x03e."), &pyList{items: []any{int64(1), int64(2), int64(3)}}, ""},
		{"dict build", pk("\x80\x02ccollections\nOrderedDict\n)R", uni("k"), "K\x01s}", uni("_metadata"), "K\x00sb."), nil, ""},
		{"stack global", pk("\x80\x04", uni("collections"), uni("OrderedDict"), "\x93)R."), nil, ""},
		{"os.system", pk("\x80\x02cos\nsystem\n", uni("ls"), "\x85R."), nil, "pickle: refusing global os.system"},
		{"posix.system", pk("\x80\x02cposix\nsystem\n."), nil, "pickle: refusing global posix.system"},
		{"stack global eval", pk("\x80\x04", uni("builtins"), uni("eval"), "\x93."), nil, "pickle: refusing global builtins.eval"},
		{"stack global non-string", pk("\x80\x04K\x01K\x02\x93."), nil, "STACK_GLOBAL of int and int"},
		{"INST", pk("\x80\x02(ios\nsystem\n."), nil, "pickle: refusing opcode INST"},
		{"OBJ", pk("\x80\x02(o."), nil, "pickle: refusing opcode OBJ"},
		{"NEWOBJ", pk("\x80\x02)\x81."), nil, "pickle: refusing opcode NEWOBJ"},
		{"EXT1", pk("\x80\x02\x82\x01."), nil, "pickle: refusing opcode EXT1"},
		{"unknown opcode", pk("\x80\x02\xff."), nil, "pickle: unknown opcode 0xff"},
		{"reduce on str", pk("\x80\x02", uni("f"), ")R."), nil, "REDUCE on a str"},
		{"reduce non-tuple args", pk("\x80\x02ccollections\nOrderedDict\nK\x01R."), nil, "with int arguments, want a tuple"},
		{"ordered dict with args", pk("\x80\x02ccollections\nOrderedDict\n(K\x01tR."), nil, "collections.OrderedDict called with 1 arguments, want 0"},
		{"build on list", pk("\x80\x02]}b."), nil, "BUILD on a list, only dicts are allowed"},
		{"setitem on tuple", pk("\x80\x02)K\x01K\x02s."), nil, "SETITEM on a tuple of 0, want a dict"},
		{"setitems odd", pk("\x80\x02}(K\x01u."), nil, "SETITEMS with an odd number (1)"},
		{"append on dict", pk("\x80\x02}K\x01a."), nil, "APPEND on a dict, want a list"},
		{"huge string", pk("\x80\x02X\xff\xff\xff\x7f"), nil, "pickle: truncated input"},
		{"huge string8", pk("\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff"), nil, "pickle: truncated input"},
		{"huge frame", pk("\x80\x04\x95\xff\xff\xff\xff\x00\x00\x00\x00."), nil, "pickle: truncated input"},
		{"negative binstring", pk("\x80\x02T\xff\xff\xff\xff."), nil, "BINSTRING negative length"},
		{"invalid utf8", pk("\x80\x02X\x01\x00\x00\x00\xff."), nil, "BINUNICODE string is not valid UTF-8"},
		{"long1 too big", pk("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."), nil, "LONG1 of 9 bytes does not fit"},
		{"underflow", pk("\x80\x02\x85."), nil, "pickle: stack underflow"},
		{"underflow past mark", pk("\x80\x02K\x01(\x85."), nil, "pickle: stack underflow"},
		{"tuple without mark", pk("\x80\x02K\x01t."), nil, "no MARK on the stack"},
		{"memo missing", pk("\x80\x02h\x05."), nil, "memo key 5 not set"},
		{"put on empty", pk("\x80\x02q\x01."), nil, "stack underflow"},
		{"no stop", pk("\x80\x02K\x01"), nil, "input ends without STOP"},
		{"two values", pk("\x80\x02K\x01K\x02."), nil, "STOP with 2 values on the stack"},
		{"open mark", pk("\x80\x02K\x01(."), nil, "STOP with an open MARK"},
		{"protocol 1", pk("\x80\x01."), nil, "unsupported protocol 1"},
		{"global without newline", pk("\x80\x02ccollections"), nil, "truncated"},
		{"persid without loader", pk("\x80\x02K\x01Q."), nil, "persistent id without a loader"},
		{"empty", nil, nil, "input ends without STOP"},
	}
	for _, tc := range tests {
		got, err := unpickle(tc.pkl, nil, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		switch tc.name {
		case "dict build":
			d, ok := got.(*pyDict)
			if !ok || len(d.keys) != 1 || d.keys[0] != "k" || d.vals[0] != int64(1) {
				t.Errorf("dict build: got %#v", got)
			}
		case "stack global":
			if _, ok := got.(*pyDict); !ok {
				t.Errorf("stack global: got %s, want dict", typeName(got))
			}
		default:
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s: got %#v, want %#v", tc.name, got, tc.want)
			}
		}
	}
}

func TestReadTorchBinLegacyFiles(t *testing.T) {
	dir := filepath.Join("testdata", "torchbin")
	got, err := ReadTorchBin(filepath.Join(dir, "legacy.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := got["w"].Float32(); len(got) != 1 || err != nil || !reflect.DeepEqual(v, []float32{1, 2, 3}) || !reflect.DeepEqual(got["w"].Shape, []int{3}) {
		t.Errorf("legacy.bin: got %v (%v), want w = [1 2 3]", got, err)
	}

	// torch's storage keys are addresses, so the patterns leave them open.
	tests := []struct{ file, re string }{
		{"legacy_truncated.bin", `^testdata/torchbin/legacy_truncated\.bin: torchbin: legacy storage "\d+" \(record 1 of 1 at byte 331\): needs 24 bytes \(6 elements of torch\.FloatStorage\), only 12 remain in the file$`},
		{"legacy_short_storage.bin", `^testdata/torchbin/legacy_short_storage\.bin: torchbin: legacy storage "\d+" \(record 1 of 1 at byte 331\): record holds 3 elements, the state dict declares 6 of torch\.FloatStorage$`},
	}
	for _, tc := range tests {
		_, err := ReadTorchBin(filepath.Join(dir, tc.file))
		if err == nil || !regexp.MustCompile(tc.re).MatchString(filepath.ToSlash(err.Error())) {
			t.Errorf("%s: error %v, want match %s", tc.file, err, tc.re)
		}
	}

	// legacy_golden.bin: the four views of bert.base share its one storage record.
	lb, err := os.ReadFile(filepath.Join(dir, "legacy_golden.bin"))
	if err != nil {
		t.Fatal(err)
	}
	lf, err := parseLegacy(bytes.NewReader(lb), int64(len(lb)))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*torchStorage{}
	for _, e := range lf.entries {
		byName[e.name] = e.t.storage
	}
	if len(lf.entries) != 13 || len(lf.data) != 10 {
		t.Errorf("legacy_golden.bin: %d tensors over %d storages, want 13 over 10", len(lf.entries), len(lf.data))
	}
	for _, v := range []string{"bert.transposed", "bert.strided", "bert.offset"} {
		if byName[v] == nil || byName[v] != byName["bert.base"] {
			t.Errorf("legacy_golden.bin: %s does not share bert.base's storage", v)
		}
	}

	// Every proper prefix of a legacy file, and the file with a byte appended, is refused
	// with an error, never a panic.
	b, err := os.ReadFile(filepath.Join(dir, "legacy_golden.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if _, err := readZipBytes(b[:n]); err == nil {
			t.Fatalf("legacy_golden.bin cut to %d bytes: no error", n)
		}
	}
	if _, err := readZipBytes(append(b[:len(b):len(b)], 0)); err == nil || !strings.Contains(err.Error(), "has 1 bytes after its last storage record") {
		t.Errorf("trailing byte: error %v", err)
	}
}

// Legacy-format pieces: the header pickles as _legacy_save writes them (protocol 2).
var (
	legacyMagicPkl   = "\x80\x02\x8a\x0a" + string(legacyMagicNumber) + "."
	legacyVersionPkl = "\x80\x02M\xe9\x03."
	legacySysInfoPkl = "\x80\x02}(" + uni("protocol_version") + "M\xe9\x03" + uni("little_endian") + "\x88" + uni("type_sizes") + "}(" + uni("short") + "K\x02" + uni("int") + "K\x04" + uni("long") + "K\x04uu."
)

// legacyPid is a legacy persistent id ('storage', torch.<class>, key, 'cpu', numel, view),
// view being the opcodes of view_metadata ("N" for None), followed by BINPERSID.
func legacyPid(class, key string, numel int, view string) string {
	return "(" + uni("storage") + "ctorch\n" + class + "\n" + uni(key) + uni("cpu") +
		"J" + string(binary.LittleEndian.AppendUint32(nil, uint32(numel))) + view + "tQ"
}

// legacyTensor is _rebuild_tensor_v2(pid, offset, size, stride, False, OrderedDict()).
func legacyTensor(pid string, offset int, size, stride []int) string {
	tup := func(v []int) string {
		s := "("
		for _, x := range v {
			s += "J" + string(binary.LittleEndian.AppendUint32(nil, uint32(x)))
		}
		return s + "t"
	}
	return "ctorch._utils\n_rebuild_tensor_v2\n(" + pid +
		"J" + string(binary.LittleEndian.AppendUint32(nil, uint32(offset))) +
		tup(size) + tup(stride) + "\x89ccollections\nOrderedDict\n)RtR"
}

// legacyDict is the pickle of an OrderedDict of the given name/value opcode pairs.
func legacyDict(kv ...string) string {
	s := "\x80\x02ccollections\nOrderedDict\n)R("
	for i := 0; i < len(kv); i += 2 {
		s += uni(kv[i]) + kv[i+1]
	}
	return s + "u."
}

// legacyKeys is the pickle of the storage key list.
func legacyKeys(keys ...string) string {
	s := "\x80\x02]("
	for _, k := range keys {
		s += uni(k)
	}
	return s + "e."
}

// legacyRecord is one storage record: the int64 element count and the bytes.
func legacyRecord(numel int, data []byte) string {
	return string(binary.LittleEndian.AppendUint64(nil, uint64(numel))) + string(data)
}

func TestReadTorchBinLegacyStructure(t *testing.T) {
	head := legacyMagicPkl + legacyVersionPkl + legacySysInfoPkl
	x := legacyTensor(legacyPid("FloatStorage", "7", 6, "N"), 0, []int{2, 3}, []int{3, 1})
	rec := legacyRecord(6, f32le(0, 1, 2, 3, 4, 5))
	tests := []struct {
		name string
		file string
		want map[string][]float32
		err  string
	}{
		{name: "well formed", file: head + legacyDict("x", x) + legacyKeys("7") + rec,
			want: map[string][]float32{"x": {0, 1, 2, 3, 4, 5}}},
		{name: "transposed and offset views share a storage", file: head + legacyDict(
			"t", legacyTensor(legacyPid("FloatStorage", "7", 6, "N"), 0, []int{3, 2}, []int{1, 3}),
			"o", legacyTensor(legacyPid("FloatStorage", "7", 6, "N"), 4, []int{2}, []int{1})) + legacyKeys("7") + rec,
			want: map[string][]float32{"t": {0, 3, 1, 4, 2, 5}, "o": {4, 5}}},
		{name: "two storages, records in key-list order", file: head + legacyDict(
			"a", legacyTensor(legacyPid("FloatStorage", "1", 2, "N"), 0, []int{2}, []int{1}),
			"b", legacyTensor(legacyPid("FloatStorage", "2", 1, "N"), 0, []int{1}, []int{1})) + legacyKeys("2", "1") +
			legacyRecord(1, f32le(9)) + legacyRecord(2, f32le(7, 8)),
			want: map[string][]float32{"a": {7, 8}, "b": {9}}},
		{name: "view_metadata", file: head + legacyDict(
			"v", legacyTensor(legacyPid("FloatStorage", "7", 6, "("+uni("8")+"K\x02K\x03t"), 1, []int{2}, []int{1}),
			"w", legacyTensor(legacyPid("FloatStorage", "7", 6, "("+uni("8")+"K\x02K\x03t"), 0, []int{3}, []int{1})) + legacyKeys("7") + rec,
			want: map[string][]float32{"v": {3, 4}, "w": {2, 3, 4}}},
		{name: "protocol 4 magic with FRAME", file: "\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00\x8a\x0a" + string(legacyMagicNumber) + "." +
			legacyVersionPkl + legacySysInfoPkl + legacyDict("x", x) + legacyKeys("7") + rec,
			want: map[string][]float32{"x": {0, 1, 2, 3, 4, 5}}},
		{name: "empty storage", file: head + legacyDict("e", legacyTensor(legacyPid("FloatStorage", "7", 0, "N"), 0, []int{0}, []int{1})) + legacyKeys("7") + legacyRecord(0, nil),
			want: map[string][]float32{"e": {}}},

		{name: "view past its root", file: head + legacyDict("v", legacyTensor(legacyPid("FloatStorage", "7", 6, "("+uni("8")+"K\x04K\x03t"), 0, []int{1}, []int{1})) + legacyKeys("7") + rec,
			err: `storage view "8": elements [4, 4+3) lie outside storage "7" of 6 elements`},
		{name: "tensor past its view", file: head + legacyDict("v", legacyTensor(legacyPid("FloatStorage", "7", 6, "("+uni("8")+"K\x02K\x03t"), 1, []int{3}, []int{1})) + legacyKeys("7") + rec,
			err: `tensor "v": view (offset 1, size [3], stride [1]) reaches element 3 of storage "8", which holds 3 elements`},
		{name: "bad view_metadata", file: head + legacyDict("v", legacyTensor(legacyPid("FloatStorage", "7", 6, "K\x01"), 0, []int{1}, []int{1})) + legacyKeys("7") + rec,
			err: `storage "7": view_metadata is a int, want None or (view_key, offset, size)`},
		{name: "zip-format persistent id", file: head + legacyDict("x", legacyTensor(legacyPid("FloatStorage", "7", 6, ""), 0, []int{1}, []int{1})) + legacyKeys("7") + rec,
			err: "persistent id is a tuple of 5, want ('storage', class, root_key, location, numel, view_metadata)"},
		{name: "wrong protocol version", file: legacyMagicPkl + "\x80\x02M\xe8\x03." + legacySysInfoPkl + legacyDict("x", x) + legacyKeys("7") + rec,
			err: "torchbin: legacy torch.save file: protocol version is 1000, want the int 1001"},
		{name: "big endian", file: legacyMagicPkl + legacyVersionPkl + "\x80\x02}" + uni("little_endian") + "\x89s." + legacyDict("x", x) + legacyKeys("7") + rec,
			err: "sys_info little_endian is false; only files written on little-endian machines are supported"},
		{name: "sys_info not a dict", file: legacyMagicPkl + legacyVersionPkl + "\x80\x02K\x01." + legacyDict("x", x) + legacyKeys("7") + rec,
			err: "sys_info is a int, want a dict"},
		{name: "hostile stack global", file: head + "\x80\x04" + uni("builtins") + uni("eval") + "\x93" + uni("1+1") + "\x85R." + legacyKeys(),
			err: "state dict pickle at byte 121: pickle: refusing global builtins.eval"},
		{name: "state dict not a dict", file: head + "\x80\x02](K\x01e." + legacyKeys(),
			err: "state dict: top-level object is a list, want a state dict"},
		{name: "key list not a list", file: head + legacyDict("x", x) + "\x80\x02K\x01." + rec,
			err: "storage key list is a int, want a list"},
		{name: "key list of ints", file: head + legacyDict("x", x) + "\x80\x02](K\x07e." + rec,
			err: "storage key 0 is a int, want a str"},
		{name: "undeclared key", file: head + legacyDict("x", x) + legacyKeys("9") + rec,
			err: `legacy storage list names "9", which the state dict does not declare`},
		{name: "key listed twice", file: head + legacyDict("x", x) + legacyKeys("7", "7") + rec + rec,
			err: `legacy storage list names "7" twice`},
		{name: "storage without record", file: head + legacyDict("x", x) + legacyKeys(),
			err: `legacy storage "7" has no data record`},
		{name: "count cut", file: head + legacyDict("x", x) + legacyKeys("7") + rec[:5],
			err: `legacy storage "7" (record 1 of 1 at byte 319): file ends 5 bytes into the 8-byte element count`},
		{name: "count mismatch", file: head + legacyDict("x", x) + legacyKeys("7") + legacyRecord(5, f32le(0, 1, 2, 3, 4)),
			err: `legacy storage "7" (record 1 of 1 at byte 319): record holds 5 elements, the state dict declares 6 of torch.FloatStorage`},
		{name: "data cut", file: head + legacyDict("x", x) + legacyKeys("7") + rec[:len(rec)-1],
			err: `legacy storage "7" (record 1 of 1 at byte 319): needs 24 bytes (6 elements of torch.FloatStorage), only 23 remain in the file`},
		{name: "huge count", file: head + legacyDict("x", legacyTensor(legacyPid("FloatStorage", "7", 0x7fffffff, "N"), 0, []int{1}, []int{1})) + legacyKeys("7") + legacyRecord(0x7fffffff, nil),
			err: `needs 8589934588 bytes (2147483647 elements of torch.FloatStorage), only 0 remain in the file`},
		{name: "unsupported storage stepped over", file: head + legacyDict(
			"x", x, "d", legacyTensor(legacyPid("DoubleStorage", "5", 1, "N"), 0, []int{1}, []int{1})) + legacyKeys("5", "7") + legacyRecord(1, make([]byte, 8)) + rec,
			err: `tensor "d": storage type torch.DoubleStorage is not supported`},
		{name: "truncated pickle", file: head + legacyDict("x", x)[:40],
			err: "state dict pickle at byte 121: pickle: truncated input"},
	}
	for _, tc := range tests {
		got, err := readZipBytes([]byte(tc.file))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d tensors, want %d", tc.name, len(got), len(tc.want))
		}
		for name, want := range tc.want {
			v, err := got[name].Float32()
			if err != nil || !reflect.DeepEqual(v, want) {
				t.Errorf("%s: %s = %v (%v), want %v", tc.name, name, v, err, want)
			}
		}
	}
}

// TestReadTorchBinCompressedStorage checks that a deflated storage entry is refused before it
// is inflated: torch never compresses storages, and a small deflated entry could expand to a
// large allocation.
func TestReadTorchBinCompressedStorage(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range []struct {
		name   string
		method uint16
		data   []byte
	}{
		{"archive/data.pkl", zip.Store, tensorPickle("x", "FloatStorage", "0", 2, 0, []int{2}, []int{1})},
		{"archive/data/0", zip.Deflate, f32le(1, 2)},
	} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := readZipBytes(buf.Bytes())
	if want := `torchbin: tensor "x": storage "0" is compressed (zip method 8); torch.save stores storages uncompressed`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestReadTorchBinLegacyLarge covers a legacy file whose pickles run past the first window
// the reader tries (legacyFirstWindow) and whose storage lies beyond it.
func TestReadTorchBinLegacyLarge(t *testing.T) {
	name := strings.Repeat("n", legacyFirstWindow+100)
	vals := make([]float32, legacyFirstWindow/4+3)
	for i := range vals {
		vals[i] = float32(i)
	}
	file := legacyMagicPkl + legacyVersionPkl + legacySysInfoPkl +
		legacyDict(name, legacyTensor(legacyPid("FloatStorage", "7", len(vals), "N"), 0, []int{len(vals)}, []int{1})) +
		legacyKeys("7") + legacyRecord(len(vals), f32le(vals...))
	got, err := readZipBytes([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	v, err := got[name].Float32()
	if err != nil || !reflect.DeepEqual(v, vals) {
		t.Errorf("large legacy file: %d values (%v), want %d", len(v), err, len(vals))
	}
}
