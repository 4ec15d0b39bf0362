//go:build !unix

package nn

import "errors"

// MapSafetensors is LoadSafetensors on systems other than unix ones (no mmap here): the
// tensors are read, and the Mapping is nil.
func MapSafetensors(path string) (*SafeFile, *Mapping, error) {
	f, err := LoadSafetensors(path)
	return f, nil, err
}

// Mapping is a mapped file; on this system MapSafetensors never makes one.
type Mapping struct{}

// Rows fails: there is no mapping.
func (m *Mapping) Rows(t SafeTensor, keep any) (RowSource, error) {
	return nil, errors.New("safetensors: no mapping on this system")
}

// Evict does nothing.
func (m *Mapping) Evict() error { return nil }

// Close does nothing.
func (m *Mapping) Close() error { return nil }
