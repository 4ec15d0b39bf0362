//go:build unix

package nn

import (
	"bytes"
	"fmt"
	"os"

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
	m := &Mapping{data: data}
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
	return err
}
