package bert

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"

	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/nn"
)

// TorchArchiveName is the folder inside the zip archives WriteTorchZip writes ("archive", as
// torch.save names it when it writes to a file object without a name).
const TorchArchiveName = "archive"

// torchStorageClass names the typed-storage class torch.save pickles for each element type.
var torchStorageClass = map[kernels.DType]string{
	kernels.F32:  "FloatStorage",
	kernels.F16:  "HalfStorage",
	kernels.BF16: "BFloat16Storage",
	kernels.I64:  "LongStorage",
	kernels.I32:  "IntStorage",
}

// torchRecordAlign is the alignment torch.save gives every record's data in its archive
// (caffe2's PyTorchStreamWriter pads the local header's extra field to 64 bytes), so that
// torch.load(mmap=True) can map the storages.
const torchRecordAlign = 64

// WriteTorchZip writes tensors as torch.save(state_dict) writes them in its zip format (the
// default since torch 1.6): an OrderedDict of contiguous tensors, in the order of names,
// pickled with protocol 2 as torch._utils._rebuild_tensor_v2 calls on persistent storages;
// one storage per tensor stored uncompressed as archive/data/N; archive/version ("3") and
// archive/byteorder ("little"). Everything in the pickle is on torch.load(weights_only=True)'s
// allowlist. Every name must be in tensors, with a dtype torch has a storage class for.
func WriteTorchZip(w io.Writer, names []string, tensors map[string]nn.SafeTensor) error {
	pkl, err := torchStateDictPickle(names, tensors)
	if err != nil {
		return err
	}
	cw := &countWriter{w: w}
	zw := zip.NewWriter(cw)
	put := func(name string, data []byte) error {
		if err := zw.Flush(); err != nil {
			return err
		}
		full := TorchArchiveName + "/" + name
		// The local header is 30 bytes, the name, then the extra field; pad the extra field
		// (one record "FB" + length, as torch's writer pads) so that the data starts aligned.
		off := cw.n + 30 + int64(len(full)) + 4
		pad := (torchRecordAlign - off%torchRecordAlign) % torchRecordAlign
		extra := make([]byte, 4+pad)
		copy(extra, "FB")
		binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
		fh := &zip.FileHeader{Name: full, Method: zip.Store, Extra: extra,
			CRC32: crc32.ChecksumIEEE(data), CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(len(data))}
		fw, err := zw.CreateRaw(fh)
		if err != nil {
			return err
		}
		_, err = fw.Write(data)
		return err
	}
	if err := put("data.pkl", pkl); err != nil {
		return err
	}
	if err := put("byteorder", []byte("little")); err != nil {
		return err
	}
	for i, n := range names {
		if err := put("data/"+strconv.Itoa(i), tensors[n].Data); err != nil {
			return err
		}
	}
	if err := put("version", []byte("3\n")); err != nil {
		return err
	}
	return zw.Close()
}

// SaveTorchZip writes tensors to path with WriteTorchZip, atomically.
func SaveTorchZip(path string, names []string, tensors map[string]nn.SafeTensor) error {
	return WriteFileAtomic(path, func(w io.Writer) error { return WriteTorchZip(w, names, tensors) })
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Pickle opcodes of protocol 2 that torchStateDictPickle writes.
const (
	opProto      = 0x80
	opGlobal     = 'c'
	opEmptyTuple = ')'
	opReduce     = 'R'
	opMark       = '('
	opSetItems   = 'u'
	opTuple      = 't'
	opBinUnicode = 'X'
	opBinInt     = 'J'
	opLong1      = 0x8a
	opNewFalse   = 0x89
	opBinPersID  = 'Q'
	opStop       = '.'
)

// torchStateDictPickle pickles the state dict of WriteTorchZip: tensor i of names is a view
// of the whole storage "i" (offset 0, contiguous strides).
func torchStateDictPickle(names []string, tensors map[string]nn.SafeTensor) ([]byte, error) {
	var b bytes.Buffer
	str := func(s string) {
		b.WriteByte(opBinUnicode)
		binary.Write(&b, binary.LittleEndian, uint32(len(s)))
		b.WriteString(s)
	}
	integer := func(v int64) {
		if v >= -1<<31 && v < 1<<31 {
			b.WriteByte(opBinInt)
			binary.Write(&b, binary.LittleEndian, int32(v))
			return
		}
		b.WriteByte(opLong1)
		b.WriteByte(8)
		binary.Write(&b, binary.LittleEndian, v)
	}
	ints := func(v []int) {
		b.WriteByte(opMark)
		for _, x := range v {
			integer(int64(x))
		}
		b.WriteByte(opTuple)
	}
	global := func(module, name string) { b.WriteString(string(rune(opGlobal)) + module + "\n" + name + "\n") }
	b.Write([]byte{opProto, 2})
	global("collections", "OrderedDict")
	b.Write([]byte{opEmptyTuple, opReduce, opMark})
	seen := map[string]bool{}
	for i, n := range names {
		t, ok := tensors[n]
		if !ok {
			return nil, fmt.Errorf("torchsave: no tensor %q", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("torchsave: tensor %q listed twice", n)
		}
		seen[n] = true
		class, ok := torchStorageClass[t.DType]
		if !ok {
			return nil, fmt.Errorf("torchsave: tensor %q: dtype %v has no torch storage class here", n, t.DType)
		}
		if len(t.Data) != t.NumElements()*t.DType.Size() {
			return nil, fmt.Errorf("torchsave: tensor %q: %d bytes for shape %v", n, len(t.Data), t.Shape)
		}
		str(n)
		global("torch._utils", "_rebuild_tensor_v2")
		b.WriteByte(opMark)
		// The storage: persistent id ('storage', torch.FloatStorage, key, location, numel).
		b.WriteByte(opMark)
		str("storage")
		global("torch", class)
		str(strconv.Itoa(i))
		str("cpu")
		integer(int64(t.NumElements()))
		b.WriteByte(opTuple)
		b.WriteByte(opBinPersID)
		integer(0) // storage offset
		ints(t.Shape)
		strides := make([]int, len(t.Shape))
		s := 1
		for d := len(t.Shape) - 1; d >= 0; d-- {
			strides[d] = s
			s *= t.Shape[d]
		}
		ints(strides)
		b.WriteByte(opNewFalse) // requires_grad
		global("collections", "OrderedDict")
		b.Write([]byte{opEmptyTuple, opReduce}) // backward hooks
		b.Write([]byte{opTuple, opReduce})
	}
	if len(names) != len(tensors) {
		return nil, errors.New("torchsave: names do not list every tensor")
	}
	b.Write([]byte{opSetItems, opStop})
	return b.Bytes(), nil
}
