//go:build unix

package nn

import (
	"bytes"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MapSafetensors opens the safetensors file at path as LoadSafetensors does, with the same
// checks and errors, but maps it into memory instead of reading it: every tensor's Data is a
// slice of the mapping, and a page becomes resident only when something reads it. The mapping
// is private and copy-on-write (a write changes this process's copy, never the file) and stays
// until Mapping.Close; Data slices must not be used after that. The file must not be truncated
// or rewritten in place while it is mapped (this project's writers replace files by rename,
// which leaves a mapping of the old file valid). Where mapping is not available (an empty
// file), it falls back to LoadSafetensors and returns a nil Mapping.
func MapSafetensors(path string) (*SafeFile, *Mapping, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size <= 0 || int64(int(size)) != size {
		f, err := LoadSafetensors(path)
		return f, nil, err
	}
	data, err := unix.Mmap(int(fh.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: mapping: %w", path, err)
	}
	rf, err := os.Open(path) // for Rows: reads that bypass the mapping
	if err != nil {
		unix.Munmap(data)
		return nil, nil, err
	}
	m := &Mapping{data: data, file: rf}
	entries, meta, base, err := readLayout(bytes.NewReader(data), size)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	f := &SafeFile{Tensors: make(map[string]SafeTensor, len(entries)), Metadata: meta}
	for _, e := range entries {
		b := data[base+e.begin : base+e.end : base+e.end]
		f.Tensors[e.name] = SafeTensor{DType: e.dtype, Shape: e.shape, Data: b}
	}
	return f, m, nil
}

// Mapping is a file mapped by MapSafetensors.
type Mapping struct {
	data []byte
	file *os.File
}

// Rows returns a RowSource for the float32 (V, H) tensor t of this mapping that reads rows
// from the file with pread instead of through the mapping: the rows come from the page cache
// (shared, and reclaimable by the system) without mapping pages into the process, so a lookup
// of scattered rows does not make the table resident around each (the kernel maps the cached
// pages around a faulting address). keep is held as long as the RowSource is, for the owner of
// whatever closes the mapping. Little-endian hosts only (the file's byte order).
func (m *Mapping) Rows(t SafeTensor, keep any) (RowSource, error) {
	if m == nil || m.file == nil || len(t.Data) == 0 || len(t.Shape) != 2 {
		return nil, fmt.Errorf("safetensors: no rows to read")
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(m.data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))
	if p < base || p+uintptr(len(t.Data)) > base+uintptr(len(m.data)) {
		return nil, fmt.Errorf("safetensors: tensor is not in this mapping")
	}
	return &fileRows{f: m.file, off: int64(p - base), v: t.Shape[0], h: t.Shape[1], keep: keep}, nil
}

// fileRows reads rows of a (v, h) float32 table at byte offset off of f.
type fileRows struct {
	f    *os.File
	off  int64
	v, h int
	keep any
}

func (r *fileRows) ReadRows(dst []float32, ids []int32) error {
	if len(dst) != len(ids)*r.h {
		return fmt.Errorf("safetensors: %d values for %d rows of %d", len(dst), len(ids), r.h)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= r.v {
			return fmt.Errorf("safetensors: row %d outside %d", id, r.v)
		}
		row := unsafe.Slice((*byte)(unsafe.Pointer(&dst[i*r.h])), 4*r.h)
		if _, err := r.f.ReadAt(row, r.off+int64(id)*int64(4*r.h)); err != nil {
			return fmt.Errorf("%s: row %d: %w", r.f.Name(), id, err)
		}
	}
	return nil
}

// Evict gives the resident pages of the mapping back to the system (madvise DONTNEED): the
// file's unchanged pages are read again on the next access, so a load that read every tensor
// once leaves resident only what is read afterwards. It also turns off read-ahead for the
// mapping (MADV_RANDOM): later reads are scattered rows, and read-ahead around each would
// make most of the file resident again. Pages this process wrote are lost, so call it only on
// a mapping nobody wrote.
func (m *Mapping) Evict() error {
	if m == nil || m.data == nil {
		return nil
	}
	if err := unix.Madvise(m.data, unix.MADV_DONTNEED); err != nil {
		return err
	}
	return unix.Madvise(m.data, unix.MADV_RANDOM)
}

// Close unmaps the file. Nothing may read the tensors' Data afterwards.
func (m *Mapping) Close() error {
	if m == nil || m.data == nil {
		return nil
	}
	err := unix.Munmap(m.data)
	m.data = nil
	if m.file != nil {
		m.file.Close()
		m.file = nil
	}
	return err
}
