package bert

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file reads the legacy torch.save format (torch < 1.6, or
// _use_new_zipfile_serialization=False), following torch/serialization.py's _legacy_save and
// _legacy_load. The file is
//
//	pickle(MAGIC_NUMBER)    the int 0x1950a86a20f9469cfc6c
//	pickle(PROTOCOL_VERSION) the int 1001
//	pickle(sys_info)        {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {...}}
//	pickle(state_dict)      persistent ids ('storage', class, root_key, location, numel, view_metadata)
//	pickle(keys)            the list of root keys, in the order of the records below
//	for each key:           int64 element count (little-endian), then the raw little-endian elements
//
// view_metadata is None, or (view_key, offset, size) in elements for a view of the root
// storage; torch has written None since 0.4 but reads both.

// legacyMagicNumber is MAGIC_NUMBER, 0x1950a86a20f9469cfc6c, as the 10 little-endian bytes of
// a pickle LONG1.
var legacyMagicNumber = []byte{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// legacyProtocolVersion is torch's PROTOCOL_VERSION of the legacy format.
const legacyProtocolVersion = 1001

// legacyFirstWindow is how much of a legacy file is first read to find its pickles (a
// BERT-base state dict's is about 30 kB); the window grows up to maxPickleBytes when the
// pickles run past it.
const legacyFirstWindow = 1 << 20

// storageElemSizes gives the element size of every storage class pickle.go allowlists, so
// that the records of storages mtbert does not support can be stepped over.
var storageElemSizes = map[string]int64{
	"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8, "IntStorage": 4,
	"DoubleStorage": 8, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
}

// legacyMagicLen returns the length of the pickle of MAGIC_NUMBER at the start of b, or 0
// when b does not start with one. It accepts the protocols 2 to 5 torch.save may be asked
// for: PROTO n, an optional FRAME, LONG1 of 10 bytes, STOP.
func legacyMagicLen(b []byte) int {
	if len(b) < 2 || b[0] != 0x80 || b[1] < 2 || b[1] > 5 {
		return 0
	}
	i := 2
	if len(b) > i && b[i] == 0x95 { // FRAME
		i += 9
	}
	if len(b) < i+13 || b[i] != 0x8a || b[i+1] != 10 || !bytes.Equal(b[i+2:i+12], legacyMagicNumber) || b[i+12] != '.' {
		return 0
	}
	return i + 13
}

// isLegacyTorchSave reports whether r starts with the legacy torch.save magic number.
func isLegacyTorchSave(r io.ReaderAt, size int64) bool {
	b := make([]byte, min(size, 32))
	if n, err := r.ReadAt(b, 0); n != len(b) && err != nil {
		return false
	}
	return legacyMagicLen(b) > 0
}

// legacyFile is a parsed legacy checkpoint: the state dict and where each storage's
// elements lie in the file.
type legacyFile struct {
	r       io.ReaderAt
	entries []namedTensor
	data    map[*torchStorage]int64 // root storage -> file offset of its elements
	cache   map[*torchStorage][]byte
}

// legacyPickles is what the pickles at the start of a legacy file hold.
type legacyPickles struct {
	entries []namedTensor
	roots   []*torchStorage          // root storages in declaration order
	byKey   map[string]*torchStorage // root storages by key
	keys    []string                 // the storage key list: the order of the records
	end     int                      // offset of the first record
}

// parseLegacy reads the pickles of a legacy file and locates its storage records, checking
// each against the state dict and the file size. It reads no storage data.
func parseLegacy(r io.ReaderAt, size int64) (*legacyFile, error) {
	limit := min(size, maxPickleBytes)
	window := min(limit, legacyFirstWindow)
	var p *legacyPickles
	for {
		buf := make([]byte, window)
		if n, err := r.ReadAt(buf, 0); n != len(buf) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("torchbin: legacy torch.save file: %w", err)
		}
		var short bool
		var err error
		p, short, err = parseLegacyPickles(buf)
		if err == nil {
			break
		}
		if short && window < limit {
			window = min(window*8, limit)
			continue
		}
		if short && limit < size {
			err = fmt.Errorf("%w; the pickles do not end within the first %d bytes", err, limit)
		}
		return nil, fmt.Errorf("torchbin: legacy torch.save file: %w", err)
	}

	lf := &legacyFile{r: r, entries: p.entries, data: map[*torchStorage]int64{}, cache: map[*torchStorage][]byte{}}
	off := int64(p.end)
	var hdr [8]byte
	for i, k := range p.keys {
		st := p.byKey[k]
		if st == nil {
			return nil, fmt.Errorf("torchbin: legacy storage list names %q, which the state dict does not declare", k)
		}
		if _, dup := lf.data[st]; dup {
			return nil, fmt.Errorf("torchbin: legacy storage list names %q twice", k)
		}
		es, ok := storageElemSizes[st.class.name]
		if !ok {
			return nil, fmt.Errorf("torchbin: legacy storage %q: element size of %s is unknown", k, st.class)
		}
		where := fmt.Sprintf("legacy storage %q (record %d of %d at byte %d)", k, i+1, len(p.keys), off)
		if size-off < 8 {
			return nil, fmt.Errorf("torchbin: %s: file ends %d bytes into the 8-byte element count", where, size-off)
		}
		if n, err := r.ReadAt(hdr[:], off); n != len(hdr) {
			return nil, fmt.Errorf("torchbin: %s: %w", where, err)
		}
		if n := binary.LittleEndian.Uint64(hdr[:]); n != uint64(st.numel) {
			return nil, fmt.Errorf("torchbin: %s: record holds %d elements, the state dict declares %d of %s",
				where, n, st.numel, st.class)
		}
		nbytes := st.numel * es // loadStorage bounds numel by MaxInt64/8
		if left := size - off - 8; nbytes > left {
			return nil, fmt.Errorf("torchbin: %s: needs %d bytes (%d elements of %s), only %d remain in the file",
				where, nbytes, st.numel, st.class, left)
		}
		lf.data[st] = off + 8
		off += 8 + nbytes
	}
	for _, st := range p.roots {
		if _, ok := lf.data[st]; !ok {
			return nil, fmt.Errorf("torchbin: legacy storage %q has no data record", st.key)
		}
	}
	if off != size {
		return nil, fmt.Errorf("torchbin: legacy torch.save file has %d bytes after its last storage record (byte %d of %d)", size-off, off, size)
	}
	return lf, nil
}

// parseLegacyPickles runs the five pickles at the start of buf. short reports that the
// error may only mean buf ends too early.
func parseLegacyPickles(buf []byte) (p *legacyPickles, short bool, err error) {
	pos := legacyMagicLen(buf)
	if pos == 0 {
		return nil, len(buf) < 32, errors.New("no legacy magic number")
	}
	next := func(what string, pload func(any) (any, error), reduce func(pyGlobal, pyTuple) (any, error)) (any, error) {
		u := &unpickler{data: buf[pos:], memo: map[uint32]any{}, pload: pload, reduce: reduce}
		obj, err := u.run()
		if err != nil {
			short = errors.Is(err, errTruncated) || u.pos >= len(u.data)
			return nil, fmt.Errorf("%s pickle at byte %d: %w", what, pos, err)
		}
		pos += u.pos
		return obj, nil
	}

	v, err := next("protocol version", nil, nil)
	if err != nil {
		return nil, short, err
	}
	if n, ok := v.(int64); !ok || n != legacyProtocolVersion {
		return nil, false, fmt.Errorf("protocol version is %s, want the int %d", describe(v), legacyProtocolVersion)
	}

	v, err = next("sys_info", nil, nil)
	if err != nil {
		return nil, short, err
	}
	info, ok := v.(*pyDict)
	if !ok {
		return nil, false, fmt.Errorf("sys_info is a %s, want a dict", typeName(v))
	}
	if i, ok := info.index["little_endian"]; ok && info.vals[i] != true {
		return nil, false, fmt.Errorf("sys_info little_endian is %s; only files written on little-endian machines are supported", describe(info.vals[i]))
	}

	p = &legacyPickles{byKey: map[string]*torchStorage{}}
	views := map[string]*torchStorage{}
	v, err = next("state dict", func(pid any) (any, error) { return loadLegacyStorage(pid, p, views) }, reduceTorch)
	if err != nil {
		return nil, short, err
	}
	if p.entries, err = stateDictEntries(v); err != nil {
		return nil, false, fmt.Errorf("state dict: %w", err)
	}

	v, err = next("storage key list", nil, nil)
	if err != nil {
		return nil, short, err
	}
	l, ok := v.(*pyList)
	if !ok {
		return nil, false, fmt.Errorf("storage key list is a %s, want a list", typeName(v))
	}
	p.keys = make([]string, len(l.items))
	for i, k := range l.items {
		if p.keys[i], ok = k.(string); !ok {
			return nil, false, fmt.Errorf("storage key %d is a %s, want a str", i, typeName(k))
		}
	}
	p.end = pos
	return p, false, nil
}

// describe prints a small pickle value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case int64, bool:
		return fmt.Sprint(v)
	case pyNone:
		return "None"
	}
	return "a " + typeName(v)
}

// loadLegacyStorage resolves a legacy persistent id ('storage', class, root_key, location,
// numel, view_metadata). The first five elements are those of the zip format (see
// loadStorage); a view is a slice of its root storage, named by its own key.
func loadLegacyStorage(pid any, p *legacyPickles, views map[string]*torchStorage) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 6 {
		return nil, fmt.Errorf("persistent id is a %s, want ('storage', class, root_key, location, numel, view_metadata)", typeName(pid))
	}
	v, err := loadStorage(t[:5], p.byKey)
	if err != nil {
		return nil, err
	}
	root := v.(*torchStorage)
	if len(p.roots) < len(p.byKey) {
		p.roots = append(p.roots, root)
	}
	if _, ok := t[5].(pyNone); ok {
		return root, nil
	}
	vm, ok := t[5].(pyTuple)
	if !ok || len(vm) != 3 {
		return nil, fmt.Errorf("storage %q: view_metadata is a %s, want None or (view_key, offset, size)", root.key, typeName(t[5]))
	}
	key, ok1 := vm[0].(string)
	off, ok2 := vm[1].(int64)
	n, ok3 := vm[2].(int64)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("storage %q: view_metadata (%s, %s, %s) is not (str, int, int)", root.key, typeName(vm[0]), typeName(vm[1]), typeName(vm[2]))
	}
	if off < 0 || n < 0 || off > root.numel || n > root.numel-off {
		return nil, fmt.Errorf("storage view %q: elements [%d, %d+%d) lie outside storage %q of %d elements", key, off, off, n, root.key, root.numel)
	}
	if s, ok := views[key]; ok {
		if s.root != root || s.viewOffset != off || s.numel != n {
			return nil, fmt.Errorf("storage view %q: declared as elements [%d, %d+%d) of %q and as [%d, %d+%d) of %q",
				key, s.viewOffset, s.viewOffset, s.numel, s.root.key, off, off, n, root.key)
		}
		return s, nil
	}
	s := *root
	s.key, s.numel, s.root, s.viewOffset = key, n, root, off
	views[key] = &s
	return &s, nil
}

// load returns the elements of st, reading its root storage's record once.
func (lf *legacyFile) load(st *torchStorage) ([]byte, error) {
	root := st
	if st.root != nil {
		root = st.root
	}
	es := int64(st.dtype.Size())
	data, ok := lf.cache[root]
	if !ok {
		off, ok := lf.data[root]
		if !ok {
			return nil, fmt.Errorf("legacy storage %q has no data record", root.key)
		}
		data = make([]byte, root.numel*es) // parseLegacy checked it against the file size
		if n, err := lf.r.ReadAt(data, off); n != len(data) {
			return nil, fmt.Errorf("legacy storage %q: reading %d bytes at byte %d: %w", root.key, len(data), off, err)
		}
		lf.cache[root] = data
	}
	return data[st.viewOffset*es : (st.viewOffset+st.numel)*es], nil
}
