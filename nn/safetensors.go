package nn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/mtbert/mtbert/kernels"
)

// MaxSafetensorsHeader is the largest JSON header ReadSafetensors accepts, in bytes. It is the
// limit of the reference implementation (huggingface/safetensors, safetensors/src/tensor.rs,
// MAX_HEADER_SIZE = 100_000_000).
const MaxSafetensorsHeader = 100_000_000

// SafeTensor is one tensor of a safetensors file: its element type, its shape (row-major,
// C order) and its raw little-endian bytes. len(Data) is prod(Shape)*DType.Size(); a 0-d
// tensor has an empty Shape and one element.
type SafeTensor struct {
	DType kernels.DType
	Shape []int
	Data  []byte
}

// NumElements returns prod(t.Shape), 1 for a 0-d tensor.
func (t SafeTensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// check reports whether the shape is valid and len(Data) matches it.
func (t SafeTensor) check() error {
	switch t.DType {
	case kernels.F32, kernels.BF16, kernels.F16, kernels.I64, kernels.I32, kernels.I8:
	default:
		return fmt.Errorf("unknown dtype %v", t.DType)
	}
	n, err := shapeElements(t.Shape)
	if err != nil {
		return err
	}
	if int64(len(t.Data)) != n*int64(t.DType.Size()) {
		return fmt.Errorf("%d bytes of data for shape %v of %v (want %d)",
			len(t.Data), t.Shape, t.DType, n*int64(t.DType.Size()))
	}
	return nil
}

// Float32 returns the elements of t as float32 values: a copy for F32, an exact conversion for
// F16 and BF16 (every F16 and BF16 value, subnormals, infinities and NaNs included, is a
// float32). Integer tensors give an error.
func (t SafeTensor) Float32() ([]float32, error) {
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("nn: Float32: %w", err)
	}
	out := make([]float32, len(t.Data)/t.DType.Size())
	if err := t.DecodeFloat32(out); err != nil {
		return nil, err
	}
	return out, nil
}

// DecodeFloat32 writes the elements of t into out (len(out) must be t's element count) as
// Float32 converts them, without an intermediate copy: loading a checkpoint then holds each
// tensor once in the file's bytes and once in the parameter.
func (t SafeTensor) DecodeFloat32(out []float32) error {
	if err := t.check(); err != nil {
		return fmt.Errorf("nn: Float32: %w", err)
	}
	if n := len(t.Data) / t.DType.Size(); n != len(out) {
		return fmt.Errorf("nn: Float32: %d elements into %d", n, len(out))
	}
	switch t.DType {
	case kernels.F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case kernels.BF16:
		for i := range out {
			out[i] = BF16ToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case kernels.F16:
		for i := range out {
			out[i] = Float16ToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	default:
		return fmt.Errorf("nn: Float32: tensor of %v is not floating point", t.DType)
	}
	return nil
}

// Int64 returns the elements of an I64 or I32 tensor as int64 values. Floating-point tensors
// give an error.
func (t SafeTensor) Int64() ([]int64, error) {
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("nn: Int64: %w", err)
	}
	n := len(t.Data) / t.DType.Size()
	out := make([]int64, n)
	switch t.DType {
	case kernels.I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
	case kernels.I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
	default:
		return nil, fmt.Errorf("nn: Int64: tensor of %v is not an integer type", t.DType)
	}
	return out, nil
}

// Int8 returns the elements of an I8 tensor (a copy). Other types give an error.
func (t SafeTensor) Int8() ([]int8, error) {
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("nn: Int8: %w", err)
	}
	if t.DType != kernels.I8 {
		return nil, fmt.Errorf("nn: Int8: tensor of %v is not I8", t.DType)
	}
	out := make([]int8, len(t.Data))
	for i, b := range t.Data {
		out[i] = int8(b)
	}
	return out, nil
}

// I8Tensor returns an I8 SafeTensor holding a copy of data with the given shape.
// It panics if len(data) != prod(shape) or a dimension is negative.
func I8Tensor(shape []int, data []int8) SafeTensor {
	n, err := shapeElements(shape)
	if err != nil || n != int64(len(data)) {
		panic("nn: I8Tensor: data length does not match shape")
	}
	b := make([]byte, len(data))
	for i, v := range data {
		b[i] = byte(v)
	}
	return SafeTensor{DType: kernels.I8, Shape: slices.Clone(shape), Data: b}
}

// F32Tensor returns an F32 SafeTensor holding a copy of data with the given shape.
// It panics if len(data) != prod(shape) or a dimension is negative.
func F32Tensor(shape []int, data []float32) SafeTensor {
	n, err := shapeElements(shape)
	if err != nil || n != int64(len(data)) {
		panic("nn: F32Tensor: data length does not match shape")
	}
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return SafeTensor{DType: kernels.F32, Shape: slices.Clone(shape), Data: b}
}

// I64Tensor returns an I64 SafeTensor holding a copy of data with the given shape.
// It panics if len(data) != prod(shape) or a dimension is negative.
func I64Tensor(shape []int, data []int64) SafeTensor {
	n, err := shapeElements(shape)
	if err != nil || n != int64(len(data)) {
		panic("nn: I64Tensor: data length does not match shape")
	}
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return SafeTensor{DType: kernels.I64, Shape: slices.Clone(shape), Data: b}
}

// shapeElements returns prod(shape), or an error for a negative dimension or a product that
// does not fit in an int64 (with room for an 8-byte element size).
func shapeElements(shape []int) (int64, error) {
	const limit = math.MaxInt64 / 8
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > limit/int64(d) {
			return 0, fmt.Errorf("shape %v has too many elements (overflow)", shape)
		}
		n *= int64(d)
	}
	return n, nil
}

// SafeFile is the content of a safetensors file: tensors by name and the free-form string
// metadata of the "__metadata__" header entry (nil when absent).
type SafeFile struct {
	Tensors  map[string]SafeTensor
	Metadata map[string]string
}

// Names returns the tensor names in sorted order.
func (f *SafeFile) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for k := range f.Tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// headerEntry is one tensor of the JSON header. Pointers tell a missing field from a zero one.
type headerEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// parsedEntry is a validated header entry.
type parsedEntry struct {
	name       string
	dtype      kernels.DType
	shape      []int
	begin, end int64
}

// ReadSafetensors reads a safetensors file of size bytes from r.
//
// The file is an 8-byte little-endian header length N, N bytes of JSON header and the data
// section. Every header entry is checked before any tensor data is allocated: known dtype,
// non-negative dimensions whose product does not overflow, data_offsets a pair [begin, end]
// with begin <= end and end-begin = prod(shape)*dtype size. Following the reference
// implementation (huggingface/safetensors, Metadata::validate and read_metadata), the tensors
// sorted by offset must tile the data section exactly: the first begins at 0, each begins
// where the previous ends (no overlap, no gap), and the last ends at the end of the file.
// Errors name the tensor and the offending numbers; hostile input never panics and never
// causes an allocation larger than the file.
func ReadSafetensors(r io.ReaderAt, size int64) (*SafeFile, error) {
	entries, meta, base, err := readLayout(r, size)
	if err != nil {
		return nil, err
	}
	f := &SafeFile{Tensors: make(map[string]SafeTensor, len(entries)), Metadata: meta}
	for _, e := range entries {
		data := make([]byte, e.end-e.begin)
		if len(data) > 0 {
			if _, err := r.ReadAt(data, base+e.begin); err != nil {
				return nil, fmt.Errorf("safetensors: tensor %q: reading bytes [%d, %d) of the data section: %w",
					e.name, e.begin, e.end, err)
			}
		}
		f.Tensors[e.name] = SafeTensor{DType: e.dtype, Shape: e.shape, Data: data}
	}
	return f, nil
}

// readLayout reads and validates the header of a safetensors file of size bytes (see
// ReadSafetensors) and returns its entries sorted by offset, its metadata and the file offset
// of the data section.
func readLayout(r io.ReaderAt, size int64) ([]parsedEntry, map[string]string, int64, error) {
	if size < 8 {
		return nil, nil, 0, fmt.Errorf("safetensors: file is %d bytes, shorter than the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, nil, 0, fmt.Errorf("safetensors: reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxSafetensorsHeader {
		return nil, nil, 0, fmt.Errorf("safetensors: header length %d exceeds the %d-byte limit", n, MaxSafetensorsHeader)
	}
	if n > uint64(size-8) {
		return nil, nil, 0, fmt.Errorf("safetensors: header length %d exceeds the %d bytes after the length field", n, size-8)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, nil, 0, fmt.Errorf("safetensors: reading %d-byte header: %w", n, err)
	}
	entries, meta, err := parseHeader(header, size-8-int64(n))
	if err != nil {
		return nil, nil, 0, err
	}
	return entries, meta, 8 + int64(n), nil
}

// parseHeader decodes and validates the JSON header against a data section of dataLen bytes.
// It returns the entries sorted by offset.
func parseHeader(header []byte, dataLen int64) ([]parsedEntry, map[string]string, error) {
	if !utf8.Valid(header) {
		return nil, nil, errors.New("safetensors: header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: header is not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("safetensors: header is not a JSON object (starts with %v)", tok)
	}
	var (
		entries []parsedEntry
		meta    map[string]string
		seen    = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: header is not JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: header is not JSON: unexpected %v", tok)
		}
		if seen[key] {
			return nil, nil, fmt.Errorf("safetensors: header has key %q twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("safetensors: header is not JSON at key %q: %w", key, err)
		}
		if key == "__metadata__" {
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, fmt.Errorf("safetensors: __metadata__ is not an object of strings: %w", err)
			}
			continue
		}
		e, err := parseEntry(key, raw)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, fmt.Errorf("safetensors: header is not JSON: %w", err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: header has trailing bytes after the JSON object: %w", err)
		}
		return nil, nil, fmt.Errorf("safetensors: header has trailing data after the JSON object: %v", tok)
	}

	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.begin != b.begin {
			return a.begin < b.begin
		}
		if a.end != b.end {
			return a.end < b.end
		}
		return a.name < b.name
	})
	var pos int64
	prev := ""
	for _, e := range entries {
		switch {
		case e.begin < pos:
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at %d",
				e.name, e.begin, e.end, prev, pos)
		case e.begin > pos:
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] leave a gap of %d bytes after offset %d (the data section must be covered contiguously)",
				e.name, e.begin, e.end, e.begin-pos, pos)
		}
		if e.end > dataLen {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data_offsets end %d is beyond the %d-byte data section",
				e.name, e.end, dataLen)
		}
		pos, prev = e.end, e.name
	}
	if pos != dataLen {
		return nil, nil, fmt.Errorf("safetensors: tensors cover %d bytes but the data section is %d bytes (the data section must be covered exactly)",
			pos, dataLen)
	}
	return entries, meta, nil
}

// parseEntry decodes and checks one tensor entry of the header, alone.
func parseEntry(key string, raw json.RawMessage) (parsedEntry, error) {
	var h headerEntry
	if err := json.Unmarshal(raw, &h); err != nil {
		return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: bad entry: %w", key, err)
	}
	switch {
	case h.DType == nil:
		return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: entry has no dtype", key)
	case h.Shape == nil:
		return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: entry has no shape", key)
	case h.DataOffsets == nil:
		return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: entry has no data_offsets", key)
	}
	dt, err := kernels.ParseDType(*h.DType)
	if err != nil {
		return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: unknown dtype %q", key, *h.DType)
	}
	shape := make([]int, len(*h.Shape))
	for i, d := range *h.Shape {
		if d < 0 {
			return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: negative dimension %d in shape %v", key, d, *h.Shape)
		}
		if d > math.MaxInt {
			return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: dimension %d in shape %v is too large", key, d, *h.Shape)
		}
		shape[i] = int(d)
	}
	nel, err := shapeElements(shape)
	if err != nil {
		return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: %w", key, err)
	}
	offs := *h.DataOffsets
	if len(offs) != 2 {
		return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: data_offsets has %d numbers, want [begin, end]", key, len(offs))
	}
	begin, end := offs[0], offs[1]
	if begin < 0 || end < begin {
		return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] are not 0 <= begin <= end", key, begin, end)
	}
	if want := nel * int64(dt.Size()); end-begin != want {
		return parsedEntry{}, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] hold %d bytes but shape %v of %v needs %d",
			key, begin, end, end-begin, shape, dt, want)
	}
	return parsedEntry{name: key, dtype: dt, shape: shape, begin: begin, end: end}, nil
}

// LoadSafetensors reads the safetensors file at path. Errors start with the path.
func LoadSafetensors(path string) (*SafeFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sf, err := ReadSafetensors(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sf, nil
}

// WriteSafetensors writes tensors and metadata (nil or empty for none) to w in the safetensors
// format. The output is deterministic: the header lists "__metadata__" first, then the tensors
// in sorted name order; the data is laid out in the same order; the header is padded with
// spaces to a multiple of 8 bytes, as the reference implementation does, so that data offsets
// stay 8-byte aligned. A tensor whose data length does not match its shape is an error, and so
// is the name "__metadata__".
func WriteSafetensors(w io.Writer, tensors map[string]SafeTensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for k, t := range tensors {
		if k == "__metadata__" {
			return errors.New("safetensors: a tensor may not be named __metadata__")
		}
		if err := t.check(); err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", k, err)
		}
		names = append(names, k)
	}
	sort.Strings(names)

	var hb bytes.Buffer
	hb.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		mkeys := make([]string, 0, len(metadata))
		for k := range metadata {
			mkeys = append(mkeys, k)
		}
		sort.Strings(mkeys)
		hb.WriteString(`"__metadata__":{`)
		for i, k := range mkeys {
			if i > 0 {
				hb.WriteByte(',')
			}
			writeJSONString(&hb, k)
			hb.WriteByte(':')
			writeJSONString(&hb, metadata[k])
		}
		hb.WriteByte('}')
		first = false
	}
	var off int64
	for _, k := range names {
		t := tensors[k]
		if !first {
			hb.WriteByte(',')
		}
		first = false
		writeJSONString(&hb, k)
		hb.WriteString(`:{"dtype":"`)
		hb.WriteString(t.DType.String())
		hb.WriteString(`","shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				hb.WriteByte(',')
			}
			hb.WriteString(strconv.Itoa(d))
		}
		end := off + int64(len(t.Data))
		fmt.Fprintf(&hb, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	hb.WriteByte('}')
	for hb.Len()%8 != 0 {
		hb.WriteByte(' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(hb.Len()))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if _, err := w.Write(hb.Bytes()); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	for _, k := range names {
		if _, err := w.Write(tensors[k].Data); err != nil {
			return fmt.Errorf("safetensors: writing tensor %q: %w", k, err)
		}
	}
	return nil
}

// writeJSONString writes s as a JSON string without HTML escaping, as serde_json does.
func writeJSONString(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimSuffix(tmp.Bytes(), []byte("\n")))
}

// SaveSafetensors writes tensors and metadata to path atomically: it writes a temporary file
// in the same directory, syncs it to disk and renames it over path, so path holds either its
// old content or the complete new file, never a partial one.
func SaveSafetensors(path string, tensors map[string]SafeTensor, metadata map[string]string) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = WriteSafetensors(bw, tensors, metadata); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil { // CreateTemp makes 0600; a checkpoint is shareable
		return fmt.Errorf("%s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Make the rename durable; a directory that cannot be synced is not an error.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Float32ToBF16 returns the bfloat16 nearest to f, ties to even. Values beyond the bfloat16
// range round to infinity; a NaN stays a NaN (made quiet, sign and top payload bits kept).
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// BF16ToFloat32 returns the float32 value of the bfloat16 h; the conversion is exact.
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float16ToFloat32 returns the float32 value of the IEEE 754 binary16 h; the conversion is
// exact for every input, subnormals, infinities and NaNs (payload kept) included.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: mant * 2^-24. Normalise so the leading 1 sits at bit 10.
	e := uint32(113) // biased float32 exponent of 2^-14
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// Float32ToFloat16 returns the IEEE 754 binary16 nearest to f, ties to even, with gradual
// underflow to subnormals and zero and overflow to infinity. A NaN stays a NaN (made quiet,
// sign and top payload bits kept).
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): the value is m * 2^(exp-150), and the half's unit is
		// 2^-24, so the result is m >> (126-exp), rounded to nearest even.
		if exp == 0 {
			return sign // float32 subnormals are far below half the smallest half subnormal
		}
		m := mant | 0x800000
		shift := uint(126 - exp)
		if shift > 24 {
			return sign
		}
		q := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && q&1 == 1) {
			q++
		}
		return sign | uint16(q)
	}
	h := uint16(e)<<10 | uint16(mant>>13)
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is correct, up to infinity
	}
	return sign | h
}
