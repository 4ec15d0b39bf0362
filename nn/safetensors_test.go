package nn

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/kernels"
)

// stFile assembles a safetensors file from a header string and a data section, the length
// field computed from the header as given (no padding added).
func stFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func f32Bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func readBytes(t *testing.T, b []byte) (*SafeFile, error) {
	t.Helper()
	return ReadSafetensors(bytes.NewReader(b), int64(len(b)))
}

// TestWriteSafetensorsReferenceBytes checks the writer byte for byte against the expected
// outputs of the reference implementation's own tests (huggingface/safetensors,
// safetensors/src/tensor.rs: test_serialization, test_serialization_forced_alignement,
// test_empty). The header strings below are those byte arrays written as text.
func TestWriteSafetensorsReferenceBytes(t *testing.T) {
	data := f32Bytes(0, 1, 2, 3, 4, 5)
	tests := []struct {
		name    string
		tensors map[string]SafeTensor
		meta    map[string]string
		header  string // padded header as the reference writes it
		data    []byte
	}{
		{
			name:    "serialization",
			tensors: map[string]SafeTensor{"attn.0": {DType: kernels.F32, Shape: []int{1, 2, 3}, Data: data}},
			header:  `{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, // 64 bytes, no padding
			data:    data,
		},
		{
			name:    "forced alignment",
			tensors: map[string]SafeTensor{"attn0": {DType: kernels.F32, Shape: []int{1, 1, 2, 3}, Data: data}},
			header:  `{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}` + "       ", // 65+7 = 72
			data:    data,
		},
		{
			name:   "empty",
			header: "{}      ",
		},
		{
			name:   "empty with metadata",
			meta:   map[string]string{"framework": "pt"},
			header: `{"__metadata__":{"framework":"pt"}}` + "     ",
		},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, tc.tensors, tc.meta); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := stFile(tc.header, tc.data)
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: wrote\n%q\nwant\n%q", tc.name, buf.Bytes(), want)
		}
		if len(tc.header)%8 != 0 {
			t.Errorf("%s: test header length %d is not a multiple of 8", tc.name, len(tc.header))
		}
		f, err := readBytes(t, buf.Bytes())
		if err != nil {
			t.Fatalf("%s: read back: %v", tc.name, err)
		}
		if len(f.Tensors) != len(tc.tensors) {
			t.Errorf("%s: read %d tensors, want %d", tc.name, len(f.Tensors), len(tc.tensors))
		}
	}
}

// TestReadSafetensorsGolden reads a file assembled by hand: two tensors stored out of name
// order, metadata last in the header, and header padding.
func TestReadSafetensorsGolden(t *testing.T) {
	// "b" holds bytes [0,16): I64 {7, -2}; "a" holds [16,28): F32 {1.5, -0.25, 3}; "c" is an
	// empty F16 tensor at offset 28; "d" is a 0-d BF16 tensor holding 0x3FC0 = 1.5.
	hdr := `{"b":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},` +
		`"a":{"shape":[3,1],"dtype":"F32","data_offsets":[16,28]},` +
		`"c":{"dtype":"F16","shape":[0,4],"data_offsets":[28,28]},` +
		`"d":{"dtype":"BF16","shape":[],"data_offsets":[28,30]},` +
		`"__metadata__":{"format":"pt","note":"hand made"}}  `
	data := []byte{
		7, 0, 0, 0, 0, 0, 0, 0, // 7
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // -2
		0x00, 0x00, 0xc0, 0x3f, // 1.5 = 0x3fc00000
		0x00, 0x00, 0x80, 0xbe, // -0.25 = 0xbe800000
		0x00, 0x00, 0x40, 0x40, // 3 = 0x40400000
		0xc0, 0x3f, // bf16 1.5
	}
	f, err := readBytes(t, stFile(hdr, data))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Names(), []string{"a", "b", "c", "d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if want := map[string]string{"format": "pt", "note": "hand made"}; !reflect.DeepEqual(f.Metadata, want) {
		t.Errorf("Metadata = %v, want %v", f.Metadata, want)
	}
	a := f.Tensors["a"]
	if a.DType != kernels.F32 || !reflect.DeepEqual(a.Shape, []int{3, 1}) {
		t.Errorf("a: dtype %v shape %v, want F32 [3 1]", a.DType, a.Shape)
	}
	av, err := a.Float32()
	if err != nil || !reflect.DeepEqual(av, []float32{1.5, -0.25, 3}) {
		t.Errorf("a.Float32() = %v, %v; want [1.5 -0.25 3]", av, err)
	}
	bv, err := f.Tensors["b"].Int64()
	if err != nil || !reflect.DeepEqual(bv, []int64{7, -2}) {
		t.Errorf("b.Int64() = %v, %v; want [7 -2]", bv, err)
	}
	if _, err := f.Tensors["b"].Float32(); err == nil || !strings.Contains(err.Error(), "not floating point") {
		t.Errorf("b.Float32() error = %v, want 'not floating point'", err)
	}
	if _, err := a.Int64(); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Errorf("a.Int64() error = %v, want 'not an integer'", err)
	}
	c := f.Tensors["c"]
	if c.DType != kernels.F16 || !reflect.DeepEqual(c.Shape, []int{0, 4}) || len(c.Data) != 0 {
		t.Errorf("c = %+v, want empty F16 [0 4]", c)
	}
	d := f.Tensors["d"]
	dv, err := d.Float32()
	if err != nil || len(d.Shape) != 0 || !reflect.DeepEqual(dv, []float32{1.5}) {
		t.Errorf("d: shape %v values %v err %v, want 0-d [1.5]", d.Shape, dv, err)
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	f16 := SafeTensor{DType: kernels.F16, Shape: []int{2, 2}, Data: []byte{0x00, 0x3c, 0x01, 0x00, 0x00, 0x7c, 0x00, 0x7e}}
	bf16 := SafeTensor{DType: kernels.BF16, Shape: []int{3}, Data: []byte{0x80, 0x3f, 0xc1, 0xff, 0x01, 0x00}}
	i32 := SafeTensor{DType: kernels.I32, Shape: []int{1}, Data: []byte{0xff, 0xff, 0xff, 0x7f}}
	tensors := map[string]SafeTensor{
		"bert.embeddings.word_embeddings.weight": F32Tensor([]int{2, 3},
			[]float32{1, -2.5, float32(math.Inf(-1)), math.Float32frombits(0x7fc00001), math.SmallestNonzeroFloat32, -0}),
		"bert.embeddings.position_ids": I64Tensor([]int{1, 4}, []int64{0, 1, math.MaxInt64, math.MinInt64}),
		"half":                         f16,
		"brain":                        bf16,
		"int":                          i32,
		"scalar":                       F32Tensor(nil, []float32{42}),
		"empty":                        F32Tensor([]int{3, 0}, nil),
		"z \"quoted\" <html> é":        F32Tensor([]int{1}, []float32{7}),
	}
	meta := map[string]string{"format": "pt", "ünïcode": "\"x\"\n"}
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if n := binary.LittleEndian.Uint64(out); n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	f, err := readBytes(t, out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, meta) {
		t.Errorf("metadata = %v, want %v", f.Metadata, meta)
	}
	if len(f.Tensors) != len(tensors) {
		t.Fatalf("read %d tensors, want %d", len(f.Tensors), len(tensors))
	}
	for k, want := range tensors {
		got, ok := f.Tensors[k]
		if !ok {
			t.Errorf("tensor %q missing", k)
			continue
		}
		if got.DType != want.DType || len(got.Shape) != len(want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %q: got %+v, want %+v", k, got, want)
		}
		for i := range want.Shape {
			if got.Shape[i] != want.Shape[i] {
				t.Errorf("tensor %q: shape %v, want %v", k, got.Shape, want.Shape)
			}
		}
	}
	// Deterministic: writing the read-back file gives the same bytes.
	var buf2 bytes.Buffer
	if err := WriteSafetensors(&buf2, f.Tensors, f.Metadata); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, buf2.Bytes()) {
		t.Error("second write differs from the first")
	}
	// Data is laid out in sorted-name order.
	hdrLen := int(binary.LittleEndian.Uint64(out))
	data := out[8+hdrLen:]
	var off int
	for _, k := range f.Names() {
		n := len(tensors[k].Data)
		if !bytes.Equal(data[off:off+n], tensors[k].Data) {
			t.Errorf("tensor %q not at offset %d of the data section", k, off)
		}
		off += n
	}
	// F16 values decode as expected: 1, 2^-24, +Inf, NaN.
	hv, _ := f.Tensors["half"].Float32()
	if hv[0] != 1 || hv[1] != float32(math.Ldexp(1, -24)) || !math.IsInf(float64(hv[2]), 1) || hv[3] == hv[3] {
		t.Errorf("half values %v, want [1 2^-24 +Inf NaN]", hv)
	}
	iv, _ := f.Tensors["int"].Int64()
	if iv[0] != math.MaxInt32 {
		t.Errorf("int value %v, want %d", iv, math.MaxInt32)
	}
}

func TestSaveLoadSafetensors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	tensors := map[string]SafeTensor{"w": F32Tensor([]int{2}, []float32{0.5, -1})}
	if err := SaveSafetensors(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	f, err := LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Tensors["w"].Float32(); !reflect.DeepEqual(v, []float32{0.5, -1}) {
		t.Errorf("w = %v, want [0.5 -1]", v)
	}
	if f.Metadata != nil {
		t.Errorf("metadata = %v, want nil", f.Metadata)
	}
	// A failed save leaves the old file and no temporary behind.
	bad := map[string]SafeTensor{"w": {DType: kernels.F32, Shape: []int{3}, Data: make([]byte, 4)}}
	err = SaveSafetensors(path, bad, nil)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("save of bad tensor: error %v, want one naming the path and tensor", err)
	}
	if _, err := LoadSafetensors(path); err != nil {
		t.Errorf("old file damaged by failed save: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after failed save, want 1", len(ents))
	}
	// Load errors carry the path.
	junk := filepath.Join(dir, "junk.safetensors")
	if err := os.WriteFile(junk, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSafetensors(junk); err == nil || !strings.HasPrefix(err.Error(), junk+": ") {
		t.Errorf("load of junk: error %v, want prefix %q", err, junk)
	}
}

func TestWriteSafetensorsRejects(t *testing.T) {
	tests := []struct {
		name    string
		tensors map[string]SafeTensor
		want    string
	}{
		{"short data", map[string]SafeTensor{"x": {DType: kernels.F32, Shape: []int{2}, Data: make([]byte, 7)}}, `"x": 7 bytes of data for shape [2] of F32 (want 8)`},
		{"negative dim", map[string]SafeTensor{"x": {DType: kernels.F32, Shape: []int{-1}}}, `"x": negative dimension`},
		{"bad dtype", map[string]SafeTensor{"x": {DType: kernels.DType(99), Shape: []int{1}}}, `"x": unknown dtype`},
		{"reserved name", map[string]SafeTensor{"__metadata__": F32Tensor([]int{1}, []float32{1})}, "__metadata__"},
	}
	for _, tc := range tests {
		err := WriteSafetensors(&bytes.Buffer{}, tc.tensors, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// bigReader is a ReaderAt that claims a huge size but holds only a few bytes.
type bigReader struct{ b []byte }

func (r bigReader) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(r.b).ReadAt(p, off)
}

func TestReadSafetensorsHostile(t *testing.T) {
	f8 := f32Bytes(1, 2) // 8 bytes
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"too short", []byte{1, 2, 3}, "file is 3 bytes"},
		{"header past end", func() []byte {
			b := stFile("{}", nil)
			binary.LittleEndian.PutUint64(b, 1000)
			return b
		}(), "header length 1000 exceeds the 2 bytes"},
		{"not json", stFile(`{"a":`, nil), "header is not JSON"},
		{"not object", stFile(`[1,2]`, nil), "header is not a JSON object"},
		{"trailing json", stFile(`{}{}`, nil), "trailing"},
		{"invalid utf8", stFile("{\"\xff\":1}", nil), "not valid UTF-8"},
		{"entry not object", stFile(`{"a":3}`, nil), `tensor "a": bad entry`},
		{"missing dtype", stFile(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, f8), `tensor "a": entry has no dtype`},
		{"missing shape", stFile(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, f8), `tensor "a": entry has no shape`},
		{"missing offsets", stFile(`{"a":{"dtype":"F32","shape":[2]}}`, f8), `tensor "a": entry has no data_offsets`},
		{"unknown dtype", stFile(`{"a":{"dtype":"Q8","shape":[8],"data_offsets":[0,8]}}`, f8), `tensor "a": unknown dtype "Q8"`},
		{"negative dim", stFile(`{"a":{"dtype":"F32","shape":[-2,-1],"data_offsets":[0,8]}}`, f8), `tensor "a": negative dimension -2 in shape [-2 -1]`},
		{"fractional dim", stFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, f8), `tensor "a": bad entry`},
		{"shape overflow", stFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, f8), `tensor "a": shape [4294967296 4294967296] has too many elements`},
		{"one offset", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, f8), `tensor "a": data_offsets has 1 numbers`},
		{"offsets reversed", stFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, f8), `tensor "a": data_offsets [8, 0] are not 0 <= begin <= end`},
		{"negative offset", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, f8), `tensor "a": data_offsets [-8, 0] are not`},
		{"size mismatch", stFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f8), `tensor "a": data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12`},
		{"end beyond data", stFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, f8), `tensor "a": data_offsets end 16 is beyond the 8-byte data section`},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f8), `tensor "b": data_offsets [4, 8] overlap tensor "a", which ends at 8`},
		{"gap", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[1],"data_offsets":[6,8]}}`, f8), `tensor "b": data_offsets [6, 8] leave a gap of 2 bytes after offset 4`},
		{"not starting at 0", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f8), `tensor "a": data_offsets [4, 8] leave a gap of 4 bytes after offset 0`},
		{"trailing data", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f8), "tensors cover 4 bytes but the data section is 8 bytes"},
		{"duplicate key", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f8), `header has key "a" twice`},
		{"metadata not strings", stFile(`{"__metadata__":{"n":1}}`, nil), "__metadata__ is not an object of strings"},
	}
	for _, tc := range tests {
		_, err := readBytes(t, tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}

	// A header length over the cap is refused before anything is allocated or read, even
	// when the reader claims to be large enough.
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, 200_000_000)
	_, err := ReadSafetensors(bigReader{b}, 1<<40)
	if err == nil || !strings.Contains(err.Error(), "header length 200000000 exceeds the 100000000-byte limit") {
		t.Errorf("huge header: error %v", err)
	}
	binary.LittleEndian.PutUint64(b, math.MaxUint64)
	_, err = ReadSafetensors(bigReader{b}, 1<<40)
	if err == nil || !strings.Contains(err.Error(), "exceeds the 100000000-byte limit") {
		t.Errorf("max uint64 header: error %v", err)
	}
	// A reader shorter than its claimed size gives an I/O error naming the tensor.
	file := stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f8)
	_, err = ReadSafetensors(bigReader{file[:len(file)-4]}, int64(len(file)))
	if err == nil || !strings.Contains(err.Error(), `tensor "a": reading bytes [0, 8)`) {
		t.Errorf("short reader: error %v", err)
	}
}

// TestBF16Conversion checks Float32ToBF16 and BF16ToFloat32 against hand-derived bit patterns:
// bfloat16 is the top 16 bits of a float32, rounded to nearest even on the low 16 bits.
func TestBF16Conversion(t *testing.T) {
	to := []struct {
		in   uint32 // float32 bits
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x80000000, 0x8000}, // -0
		{0x3f808000, 0x3f80}, // 1 + 2^-8: tie, 0x3f80 is even
		{0x3f818000, 0x3f82}, // tie between 0x3f81 and 0x3f82: up to even
		{0x3f808001, 0x3f81}, // just above the tie
		{0x3f807fff, 0x3f80}, // just below the tie
		{0xbf818000, 0xbf82}, // negative tie rounds the magnitude to even
		{0x7f7fffff, 0x7f80}, // max float32 rounds to +Inf
		{0x7f7f7fff, 0x7f7f}, // largest value that stays finite
		{0x7f800000, 0x7f80}, // +Inf
		{0xff800000, 0xff80}, // -Inf
		{0x7fc00000, 0x7fc0}, // quiet NaN
		{0x7f800001, 0x7fc0}, // NaN with payload only in the low bits stays NaN
		{0xffa12345, 0xffe1}, // negative NaN keeps sign and top payload, made quiet
		{0x00000001, 0x0000}, // smallest subnormal rounds to zero
		{0x00008000, 0x0000}, // tie at zero: even
		{0x00018000, 0x0002}, // tie between 1 and 2: even
	}
	for _, tc := range to {
		if got := Float32ToBF16(math.Float32frombits(tc.in)); got != tc.want {
			t.Errorf("Float32ToBF16(%#08x) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
	from := []struct {
		in   uint16
		want float32
	}{
		{0x3f80, 1}, {0xc000, -2}, {0x3fc0, 1.5}, {0x4049, 3.140625}, {0x0001, float32(math.Ldexp(1, -133))},
	}
	for _, tc := range from {
		if got := BF16ToFloat32(tc.in); got != tc.want {
			t.Errorf("BF16ToFloat32(%#04x) = %v, want %v", tc.in, got, tc.want)
		}
	}
	// Every non-NaN bfloat16 survives a round trip through float32.
	for h := 0; h < 1<<16; h++ {
		f := BF16ToFloat32(uint16(h))
		if f != f {
			if g := BF16ToFloat32(Float32ToBF16(f)); g == g {
				t.Fatalf("NaN %#04x lost its NaN-ness", h)
			}
			continue
		}
		if got := Float32ToBF16(f); got != uint16(h) {
			t.Fatalf("round trip of %#04x gave %#04x", h, got)
		}
	}
}

// f16Value is the value of a binary16 computed from the IEEE 754 definition in float64:
// (-1)^s * 2^(e-15) * (1 + m/1024) for 0 < e < 31, (-1)^s * 2^-14 * m/1024 for e = 0.
func f16Value(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 0x1f:
		if m != 0 {
			return math.NaN()
		}
		return math.Inf(int(s))
	case 0:
		return s * math.Ldexp(m/1024, -14)
	}
	return s * math.Ldexp(1+m/1024, e-15)
}

func TestFloat16Conversion(t *testing.T) {
	from := []struct {
		in   uint16
		want uint32 // float32 bits
	}{
		{0x3c00, 0x3f800000}, // 1
		{0xc000, 0xc0000000}, // -2
		{0x7bff, 0x477fe000}, // 65504, the largest half
		{0x0400, 0x38800000}, // 2^-14, the smallest normal
		{0x03ff, 0x387fc000}, // 1023 * 2^-24, the largest subnormal
		{0x0200, 0x38000000}, // 2^-15
		{0x0001, 0x33800000}, // 2^-24, the smallest subnormal
		{0x8001, 0xb3800000}, // -2^-24
		{0x3555, 0x3eaaa000}, // 0.333251953125
		{0x8000, 0x80000000}, // -0
		{0x7c00, 0x7f800000}, // +Inf
		{0xfc00, 0xff800000}, // -Inf
		{0x7e00, 0x7fc00000}, // quiet NaN
		{0x7c01, 0x7f802000}, // signalling NaN, payload kept
	}
	for _, tc := range from {
		if got := math.Float32bits(Float16ToFloat32(tc.in)); got != tc.want {
			t.Errorf("Float16ToFloat32(%#04x) = %#08x, want %#08x", tc.in, got, tc.want)
		}
	}
	// Exhaustive: every binary16 converts to exactly its IEEE value, and back to itself.
	for h := 0; h < 1<<16; h++ {
		f := Float16ToFloat32(uint16(h))
		want := f16Value(uint16(h))
		if math.IsNaN(want) {
			if f == f {
				t.Fatalf("Float16ToFloat32(%#04x) = %v, want NaN", h, f)
			}
			if g := Float32ToFloat16(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, g)
			}
			continue
		}
		if float64(f) != want || math.Signbit(float64(f)) != (h&0x8000 != 0) {
			t.Fatalf("Float16ToFloat32(%#04x) = %v, want %v", h, f, want)
		}
		if got := Float32ToFloat16(f); got != uint16(h) {
			t.Fatalf("round trip of %#04x gave %#04x", h, got)
		}
	}
	to := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00},
		{0.1, 0x2e66},      // 0.0999755859375
		{65504, 0x7bff},    // largest half
		{65519.99, 0x7bff}, // below the midpoint to 65536
		{65520, 0x7c00},    // midpoint, ties to even = +Inf
		{1e10, 0x7c00},     // overflow
		{-1e10, 0xfc00},    // negative overflow
		{float32(1 + math.Ldexp(1, -11)), 0x3c00},                  // tie: 0x3c00 is even
		{float32(1 + 3*math.Ldexp(1, -11)), 0x3c02},                // tie: up to even
		{float32(math.Ldexp(1, -24)), 0x0001},                      // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000},                      // tie with zero: even
		{math.Nextafter32(float32(math.Ldexp(1, -25)), 1), 0x0001}, // just above the tie
		{float32(3 * math.Ldexp(1, -25)), 0x0002},                  // tie between 1 and 2: even
		{float32(math.Ldexp(1, -14) - math.Ldexp(1, -25)), 0x0400}, // tie 0x03ff/0x0400 carries into normal
		{float32(math.Ldexp(1, -14)), 0x0400},                      // smallest normal
		{1e-10, 0x0000},                                            // underflow
		{-1e-10, 0x8000},                                           // underflow keeps sign
		{math.SmallestNonzeroFloat32, 0x0000},                      // float32 subnormal
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
		{math.Float32frombits(0x7fc00000), 0x7e00},
		{math.Float32frombits(0x7f800001), 0x7e00}, // low payload only: still NaN
		{math.Float32frombits(0xffc00000), 0xfe00},
	}
	for _, tc := range to {
		if got := Float32ToFloat16(tc.in); got != tc.want {
			t.Errorf("Float32ToFloat16(%v [%#08x]) = %#04x, want %#04x", tc.in, math.Float32bits(tc.in), got, tc.want)
		}
	}
}

func TestTensorConstructorsPanic(t *testing.T) {
	for _, f := range []func(){
		func() { F32Tensor([]int{2}, []float32{1}) },
		func() { I64Tensor([]int{-1}, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("constructor with mismatched data did not panic")
				}
			}()
			f()
		}()
	}
}
