package bert

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/nn"
)

// MaxExpandedTensorBytes bounds the bytes ReadTorchBin materialises for one tensor that is
// larger than its storage (a tensor with zero strides, such as one saved after expand).
// Without the bound a tiny hostile file could ask for an arbitrarily large allocation.
const MaxExpandedTensorBytes = 256 << 20

// torchStorage is a storage named by a persistent id of the checkpoint pickle:
// ('storage', torch.FloatStorage, key, location, numel), with a sixth element, view_metadata,
// in the legacy format.
type torchStorage struct {
	class    pyGlobal
	dtype    kernels.DType
	known    bool // dtype is one mtbert stores
	key      string
	location string
	numel    int64
	// A view of another storage, which only the legacy format can express (its view_metadata):
	// elements [viewOffset, viewOffset+numel) of root. root is nil for a storage of its own.
	root       *torchStorage
	viewOffset int64
}

// torchTensor is what torch._utils._rebuild_tensor_v2 describes: a strided view of a storage.
type torchTensor struct {
	storage *torchStorage
	offset  int64   // in elements
	size    []int64 // shape
	stride  []int64 // in elements
}

// storageDTypes maps torch's legacy typed-storage classes to element types. The classes
// allowlisted in pickle.go but absent here (double, int16, int8, uint8, bool) are recognised
// and refused with a clear error.
var storageDTypes = map[string]kernels.DType{
	"FloatStorage":    kernels.F32,
	"HalfStorage":     kernels.F16,
	"BFloat16Storage": kernels.BF16,
	"LongStorage":     kernels.I64,
	"IntStorage":      kernels.I32,
}

// maxPickleBytes bounds the size of data.pkl; a BERT-base checkpoint's is about 30 kB.
const maxPickleBytes = 64 << 20

// maxTensorDims bounds the rank of a tensor in a checkpoint.
const maxTensorDims = 64

// ReadTorchBin reads a PyTorch checkpoint written by torch.save(state_dict) (a Hugging Face
// pytorch_model.bin), in the zip format of torch >= 1.6 or the legacy format before it. See
// ReadTorchBinReaderAt. Errors start with the path.
func ReadTorchBin(path string) (map[string]nn.SafeTensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m, err := ReadTorchBinReaderAt(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ReadTorchBinReaderAt reads a torch.save(state_dict) checkpoint of size bytes from r and
// returns its tensors by name, each contiguous (row-major) in its on-disk element type: F32,
// F16, BF16, I64 or I32. Use SafeTensor.Float32 to convert. Everything read (storages and
// materialised tensors together) is bounded by MaxModelBytes; loading a model reads only the
// tensors it needs, through OpenTorchBin, with a budget from its config.
//
// Two layouts are read. The zip format of torch >= 1.6 holds <prefix>/data.pkl, a pickle of
// an OrderedDict from name to torch._utils._rebuild_tensor_v2(storage, storage_offset, size,
// stride, ...), and one raw little-endian file <prefix>/data/<key> per storage, which must be
// stored uncompressed, as torch writes it. The legacy format (torch < 1.6, or
// _use_new_zipfile_serialization=False) is a sequence of pickles (magic number, protocol
// version, system info, the state dict, the list of storage keys) followed by one record per
// storage: an 8-byte little-endian element count and the raw little-endian elements.
//
// The pickles are read by a restricted unpickler that loads only an allowlist of globals and
// executes nothing, so a hostile file gives an error, never code execution. Storage offsets
// and strides are honoured (a transposed or sliced view is copied out to a contiguous
// tensor), several tensors may share one storage, and every storage is checked to hold
// exactly the elements its persistent id declares and every view to stay within its storage;
// errors name the tensor, the storage key and the sizes. Storages are checked against the
// file's size before anything is allocated for them, the pickles are bounded by a 64 MiB
// limit, and a tensor expanded from a smaller storage by MaxExpandedTensorBytes.
func ReadTorchBinReaderAt(r io.ReaderAt, size int64) (map[string]nn.SafeTensor, error) {
	tb, err := OpenTorchBin(r, size)
	if err != nil {
		return nil, err
	}
	tb.Budget = MaxModelBytes
	return tb.all()
}

// all materialises every tensor, in state dict order.
func (tb *TorchBin) all() (map[string]nn.SafeTensor, error) {
	out := make(map[string]nn.SafeTensor, len(tb.entries))
	for _, e := range tb.entries {
		t, err := tb.Tensor(e.name)
		if err != nil {
			return nil, err
		}
		out[e.name] = t
	}
	return out, nil
}

// TorchBin is a parsed torch.save checkpoint whose tensors have not been read yet: its names
// and shapes are known, and Tensor reads one, charging what it allocates to Budget.
type TorchBin struct {
	// Budget bounds the bytes Tensor allocates over the whole load: every storage read
	// (once, however many tensors view it) and every materialised tensor. It is checked
	// before each allocation; 0 means MaxModelBytes.
	Budget int64
	used   int64

	entries []namedTensor
	byName  map[string]*torchTensor
	load    func(st *torchStorage) ([]byte, error)
	cache   map[*torchStorage][]byte
	charged map[*torchStorage]bool // root storages whose bytes are charged
}

// OpenTorchBin parses the pickles of the checkpoint of size bytes in r (see
// ReadTorchBinReaderAt) and checks its structure: every name unique, every storage of a type
// mtbert reads, every storage's data present with its declared size. It reads no tensor data.
func OpenTorchBin(r io.ReaderAt, size int64) (*TorchBin, error) {
	if isLegacyTorchSave(r, size) {
		lf, err := parseLegacy(r, size)
		if err != nil {
			return nil, err
		}
		return newTorchBin(lf.entries, lf.load)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("torchbin: not a torch.save zip archive or legacy torch.save file: %w", err)
	}
	files := map[string]*zip.File{}
	var pkl *zip.File
	for _, f := range zr.File {
		files[f.Name] = f
		if f.Name == "data.pkl" || strings.HasSuffix(f.Name, "/data.pkl") {
			if strings.Count(f.Name, "/") > 1 {
				continue
			}
			if pkl != nil {
				return nil, fmt.Errorf("torchbin: archive has two pickles, %s and %s", pkl.Name, f.Name)
			}
			pkl = f
		}
	}
	if pkl == nil {
		return nil, errors.New("torchbin: archive has no data.pkl")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if bo, ok := files[prefix+"byteorder"]; ok {
		if bo.UncompressedSize64 > 16 {
			return nil, fmt.Errorf("torchbin: %s holds %d bytes, want at most 16", bo.Name, bo.UncompressedSize64)
		}
		b, err := readZipFile(bo, int64(bo.UncompressedSize64), size)
		if err != nil {
			return nil, fmt.Errorf("torchbin: %s: %w", bo.Name, err)
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, fmt.Errorf("torchbin: byte order %q is not supported, only little", s)
		}
	}
	if pkl.UncompressedSize64 > maxPickleBytes {
		return nil, fmt.Errorf("torchbin: %s claims %d bytes, more than the %d-byte limit", pkl.Name, pkl.UncompressedSize64, maxPickleBytes)
	}
	pdata, err := readZipFile(pkl, int64(pkl.UncompressedSize64), size)
	if err != nil {
		return nil, fmt.Errorf("torchbin: %s: %w", pkl.Name, err)
	}
	entries, err := unpickleStateDict(pdata)
	if err != nil {
		return nil, fmt.Errorf("torchbin: %s: %w", pkl.Name, err)
	}
	storageFile := func(st *torchStorage) (*zip.File, error) {
		f := files[prefix+"data/"+st.key]
		if f == nil {
			return nil, fmt.Errorf("storage file %sdata/%s is missing", prefix, st.key)
		}
		// torch writes storages uncompressed; refusing anything else keeps a small
		// deflated entry from expanding into a large allocation.
		if f.Method != zip.Store {
			return nil, fmt.Errorf("storage %q is compressed (zip method %d); torch.save stores storages uncompressed", st.key, f.Method)
		}
		if want := st.numel * int64(st.dtype.Size()); f.UncompressedSize64 != uint64(want) {
			return nil, fmt.Errorf("storage %q holds %d bytes, want %d (%d elements of %v)",
				st.key, f.UncompressedSize64, want, st.numel, st.dtype)
		}
		return f, nil
	}
	for _, e := range entries {
		if !e.t.storage.known {
			continue // refused by Tensor, with the tensor's name
		}
		if _, err := storageFile(e.t.storage); err != nil {
			return nil, fmt.Errorf("torchbin: tensor %q: %w", e.name, err)
		}
	}
	return newTorchBin(entries, func(st *torchStorage) ([]byte, error) {
		f, err := storageFile(st)
		if err != nil {
			return nil, err
		}
		data, err := readZipFile(f, st.numel*int64(st.dtype.Size()), size)
		if err != nil {
			return nil, fmt.Errorf("storage %q: %w", st.key, err)
		}
		return data, nil
	})
}

// newTorchBin indexes the entries of a state dict. load returns the bytes of a storage
// (exactly numel elements); Tensor calls it once per storage, and only for storages of a type
// mtbert supports. Both checkpoint formats share this.
func newTorchBin(entries []namedTensor, load func(st *torchStorage) ([]byte, error)) (*TorchBin, error) {
	tb := &TorchBin{entries: entries, byName: make(map[string]*torchTensor, len(entries)), load: load,
		cache: map[*torchStorage][]byte{}, charged: map[*torchStorage]bool{}}
	for _, e := range entries {
		if _, dup := tb.byName[e.name]; dup {
			return nil, fmt.Errorf("torchbin: tensor %q appears twice", e.name)
		}
		tb.byName[e.name] = e.t
	}
	return tb, nil
}

// Names returns the tensor names in the order of the state dict.
func (tb *TorchBin) Names() []string {
	out := make([]string, len(tb.entries))
	for i, e := range tb.entries {
		out[i] = e.name
	}
	return out
}

// Shape returns the shape of the named tensor, or false when there is none.
func (tb *TorchBin) Shape(name string) ([]int, bool) {
	t, ok := tb.byName[name]
	if !ok {
		return nil, false
	}
	shape := make([]int, len(t.size))
	for i, d := range t.size {
		shape[i] = int(d)
	}
	return shape, true
}

// Tensor materialises the named tensor as a contiguous SafeTensor, reading its storage first
// when no earlier tensor did. Both allocations are charged to Budget before they are made; a
// load that would exceed it is an error naming the tensor.
func (tb *TorchBin) Tensor(name string) (nn.SafeTensor, error) {
	t, ok := tb.byName[name]
	if !ok {
		return nn.SafeTensor{}, fmt.Errorf("torchbin: no tensor %q", name)
	}
	st := t.storage
	if !st.known {
		return nn.SafeTensor{}, fmt.Errorf("torchbin: tensor %q: storage type %s is not supported", name, st.class)
	}
	budget := tb.Budget
	if budget <= 0 {
		budget = MaxModelBytes
	}
	charge := func(n int64, what string) error {
		if n > budget-tb.used {
			return fmt.Errorf("torchbin: tensor %q: %s of %d bytes would bring the load to %d bytes, more than its budget of %d (the model's expected size plus a margin)",
				name, what, n, tb.used+n, budget)
		}
		tb.used += n
		return nil
	}
	n, err := checkView(t)
	if err != nil {
		return nn.SafeTensor{}, fmt.Errorf("torchbin: tensor %q: %w", name, err)
	}
	data, ok := tb.cache[st]
	if !ok {
		root := st
		if st.root != nil {
			root = st.root
		}
		if !tb.charged[root] {
			if err := charge(root.numel*int64(root.dtype.Size()), fmt.Sprintf("reading storage %q", root.key)); err != nil {
				return nn.SafeTensor{}, err
			}
			tb.charged[root] = true
		}
		var err error
		if data, err = tb.load(st); err != nil {
			return nn.SafeTensor{}, fmt.Errorf("torchbin: tensor %q: %w", name, err)
		}
		if want := st.numel * int64(st.dtype.Size()); int64(len(data)) != want {
			return nn.SafeTensor{}, fmt.Errorf("torchbin: tensor %q: storage %q: got %d bytes, want %d", name, st.key, len(data), want)
		}
		tb.cache[st] = data
	}
	if err := charge(n, "materialising it"); err != nil {
		return nn.SafeTensor{}, err
	}
	out, err := materialise(t, data)
	if err != nil {
		return nn.SafeTensor{}, fmt.Errorf("torchbin: tensor %q: %w", name, err)
	}
	return out, nil
}

// readZipFile reads the whole of f, which must hold exactly want bytes, checking its CRC.
// It allocates up front only what the archive can physically hold; a compressed entry grows
// its buffer as data actually arrives.
func readZipFile(f *zip.File, want, archiveSize int64) ([]byte, error) {
	if f.UncompressedSize64 != uint64(want) {
		return nil, fmt.Errorf("holds %d bytes, want %d", f.UncompressedSize64, want)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var data []byte
	if f.Method == zip.Store && want <= archiveSize {
		data = make([]byte, want)
		if _, err := io.ReadFull(rc, data); err != nil {
			return nil, fmt.Errorf("reading %d bytes: %w", want, err)
		}
	} else {
		if data, err = io.ReadAll(io.LimitReader(rc, want)); err != nil {
			return nil, err
		}
		if int64(len(data)) != want {
			return nil, fmt.Errorf("holds %d bytes, want %d", len(data), want)
		}
	}
	// Read to EOF so the zip reader verifies the size and the CRC-32.
	var one [1]byte
	if n, err := rc.Read(one[:]); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = errors.New("longer than declared")
		}
		return nil, err
	}
	return data, nil
}

// namedTensor is one entry of a state dict, in pickle order.
type namedTensor struct {
	name string
	t    *torchTensor
}

// unpickleStateDict runs the checkpoint pickle and returns its entries. The top-level object
// must be a dict from strings to tensors.
func unpickleStateDict(data []byte) ([]namedTensor, error) {
	storages := map[string]*torchStorage{}
	obj, err := unpickle(data, func(pid any) (any, error) { return loadStorage(pid, storages) }, reduceTorch)
	if err != nil {
		return nil, err
	}
	return stateDictEntries(obj)
}

// stateDictEntries checks that obj, the result of a checkpoint pickle, is a dict from
// strings to tensors and returns its entries in order.
func stateDictEntries(obj any) ([]namedTensor, error) {
	d, ok := obj.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("top-level object is a %s, want a state dict", typeName(obj))
	}
	out := make([]namedTensor, len(d.keys))
	for i, k := range d.keys {
		name, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("state dict key %d is a %s, want a string", i, typeName(k))
		}
		t, ok := d.vals[i].(*torchTensor)
		if !ok {
			return nil, fmt.Errorf("state dict entry %q is a %s, want a tensor", name, typeName(d.vals[i]))
		}
		out[i] = namedTensor{name, t}
	}
	return out, nil
}

// loadStorage resolves a persistent id ('storage', class, key, location, numel). A key seen
// before gives the same storage, which must agree on class and size.
func loadStorage(pid any, storages map[string]*torchStorage) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 {
		return nil, fmt.Errorf("persistent id is a %s, want ('storage', class, key, location, numel)", typeName(pid))
	}
	tag, _ := t[0].(string)
	class, ok1 := t[1].(pyGlobal)
	key, ok2 := t[2].(string)
	loc, ok3 := t[3].(string)
	numel, ok4 := t[4].(int64)
	if tag != "storage" || !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, fmt.Errorf("persistent id (%s, %s, %s, %s, %s) is not ('storage', class, key, location, numel)",
			typeName(t[0]), typeName(t[1]), typeName(t[2]), typeName(t[3]), typeName(t[4]))
	}
	if class.module != "torch" || !strings.HasSuffix(class.name, "Storage") {
		return nil, fmt.Errorf("storage %q: class %s is not a torch storage", key, class)
	}
	if numel < 0 || numel > math.MaxInt64/8 {
		return nil, fmt.Errorf("storage %q: bad element count %d", key, numel)
	}
	if s, ok := storages[key]; ok {
		if s.class != class || s.numel != numel {
			return nil, fmt.Errorf("storage %q: declared as %s of %d elements and as %s of %d", key, s.class, s.numel, class, numel)
		}
		return s, nil
	}
	dt, known := storageDTypes[class.name]
	s := &torchStorage{class: class, dtype: dt, known: known, key: key, location: loc, numel: numel}
	storages[key] = s
	return s, nil
}

// reduceTorch implements the allowlisted torch callables of REDUCE.
func reduceTorch(fn pyGlobal, args pyTuple) (any, error) {
	switch fn {
	case pyGlobal{"torch._utils", "_rebuild_tensor_v2"}:
		// (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
		if len(args) != 6 && len(args) != 7 {
			return nil, fmt.Errorf("%s called with %d arguments, want 6 or 7", fn, len(args))
		}
		st, ok := args[0].(*torchStorage)
		if !ok {
			return nil, fmt.Errorf("%s: storage argument is a %s", fn, typeName(args[0]))
		}
		off, ok := args[1].(int64)
		if !ok || off < 0 {
			return nil, fmt.Errorf("%s: storage offset is a %s, want a non-negative int", fn, typeName(args[1]))
		}
		size, err := intTuple(args[2], "size")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		stride, err := intTuple(args[3], "stride")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		if len(size) != len(stride) {
			return nil, fmt.Errorf("%s: size has %d dimensions but stride %d", fn, len(size), len(stride))
		}
		return &torchTensor{storage: st, offset: off, size: size, stride: stride}, nil
	case pyGlobal{"torch._utils", "_rebuild_parameter"}, pyGlobal{"torch._utils", "_rebuild_parameter_with_state"}:
		// (data, requires_grad, backward_hooks[, state])
		if len(args) < 3 || len(args) > 4 {
			return nil, fmt.Errorf("%s called with %d arguments", fn, len(args))
		}
		t, ok := args[0].(*torchTensor)
		if !ok {
			return nil, fmt.Errorf("%s: data argument is a %s, want a tensor", fn, typeName(args[0]))
		}
		return t, nil
	}
	return nil, fmt.Errorf("pickle: refusing to call %s", fn)
}

// intTuple converts a tuple of non-negative ints.
func intTuple(v any, what string) ([]int64, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s is a %s, want a tuple", what, typeName(v))
	}
	if len(t) > maxTensorDims {
		return nil, fmt.Errorf("%s has %d dimensions, more than %d", what, len(t), maxTensorDims)
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("%s[%d] is not a non-negative int", what, i)
		}
		out[i] = n
	}
	return out, nil
}

// checkView checks that the view t stays within its storage and that a tensor expanded from
// a smaller storage stays within MaxExpandedTensorBytes, and returns the bytes of the
// contiguous tensor it materialises into. It needs only the storage's declared size.
func checkView(t *torchTensor) (int64, error) {
	st := t.storage
	es := int64(st.dtype.Size())
	numel := int64(1)
	for _, d := range t.size {
		if d != 0 && numel > math.MaxInt64/es/d {
			return 0, fmt.Errorf("size %v has too many elements", t.size)
		}
		numel *= d
	}
	if numel == 0 {
		return 0, nil
	}
	// The last element the view touches: offset + sum((size-1)*stride).
	last := t.offset
	for i, d := range t.size {
		s := t.stride[i]
		if s != 0 && d-1 > (math.MaxInt64-last)/s {
			return 0, fmt.Errorf("stride %v overflows", t.stride)
		}
		last += (d - 1) * s
	}
	if last >= st.numel {
		return 0, fmt.Errorf("view (offset %d, size %v, stride %v) reaches element %d of storage %q, which holds %d elements",
			t.offset, t.size, t.stride, last, st.key, st.numel)
	}
	nbytes, sbytes := numel*es, st.numel*es
	if nbytes > sbytes && nbytes > MaxExpandedTensorBytes {
		return 0, fmt.Errorf("view of %d bytes over a %d-byte storage exceeds the %d-byte limit for expanded tensors",
			nbytes, sbytes, MaxExpandedTensorBytes)
	}
	return nbytes, nil
}

// materialise copies the strided view t of the storage bytes data into a contiguous tensor.
func materialise(t *torchTensor, data []byte) (nn.SafeTensor, error) {
	st := t.storage
	es := int64(st.dtype.Size())
	nbytes, err := checkView(t)
	if err != nil {
		return nn.SafeTensor{}, err
	}
	shape := make([]int, len(t.size))
	for i, d := range t.size {
		shape[i] = int(d)
	}
	out := nn.SafeTensor{DType: st.dtype, Shape: shape}
	if nbytes == 0 {
		out.Data = []byte{}
		return out, nil
	}
	numel := nbytes / es
	out.Data = make([]byte, nbytes)
	// Contiguous (row-major) views are one copy; dimensions of size 1 may have any stride.
	contiguous := true
	want := int64(1)
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] != 1 && t.stride[i] != want {
			contiguous = false
			break
		}
		want *= t.size[i]
	}
	if contiguous {
		copy(out.Data, data[t.offset*es:(t.offset+numel)*es])
		return out, nil
	}
	idx := make([]int64, len(t.size))
	src := t.offset
	for dst := int64(0); dst < nbytes; dst += es {
		copy(out.Data[dst:dst+es], data[src*es:(src+1)*es])
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			src += t.stride[i]
			if idx[i] < t.size[i] {
				break
			}
			src -= t.size[i] * t.stride[i]
			idx[i] = 0
		}
	}
	return out, nil
}
