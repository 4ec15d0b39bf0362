package cuda

import (
	"fmt"
	"io/fs"
	"sort"
)

// PTX returns the embedded PTX text of a kernel module ("elementwise", "gemm_bf16", ...).
func PTX(module string) ([]byte, error) {
	b, err := fs.ReadFile(ptxFS, "ptx/"+module+".ptx")
	if err != nil {
		return nil, fmt.Errorf("cuda: kernel module ptx/%s.ptx is not embedded (regenerate with go generate ./kernels/cuda): %w", module, err)
	}
	return b, nil
}

// Modules lists the embedded kernel modules.
func Modules() []string {
	ents, _ := fs.ReadDir(ptxFS, "ptx")
	var out []string
	for _, e := range ents {
		if n := e.Name(); len(n) > 4 && n[len(n)-4:] == ".ptx" {
			out = append(out, n[:len(n)-4])
		}
	}
	sort.Strings(out)
	return out
}

// Module returns the embedded kernel module, loading it into the context the first time.
func (c *Context) Module(name string) (*Module, error) {
	c.modMu.Lock()
	defer c.modMu.Unlock()
	return c.moduleLocked(name)
}

func (c *Context) moduleLocked(name string) (*Module, error) {
	if m, ok := c.mods[name]; ok {
		return m, nil
	}
	src, err := PTX(name)
	if err != nil {
		return nil, err
	}
	m, err := c.LoadPTX("ptx/"+name+".ptx", src)
	if err != nil {
		return nil, err
	}
	c.mods[name] = m
	return m, nil
}

// Kernel returns the kernel name of the embedded module, loading the module once per context.
func (c *Context) Kernel(module, name string) (*Function, error) {
	c.modMu.Lock()
	defer c.modMu.Unlock()
	key := kernelKey{module, name}
	if f, ok := c.funcs[key]; ok {
		return f, nil
	}
	m, err := c.moduleLocked(module)
	if err != nil {
		return nil, err
	}
	f, err := m.Function(name)
	if err != nil {
		return nil, err
	}
	c.funcs[key] = f
	return f, nil
}

// kernelKey names a kernel by module and entry: two modules may hold entries of one name.
type kernelKey struct{ module, name string }

// launch queues kernel name of module on s.
func (s *Stream) launch(module, name string, grid, block Dim3, smem int, args ...uint64) error {
	f, err := s.c.Kernel(module, name)
	if err != nil {
		return err
	}
	return f.Launch(s, grid, block, smem, args...)
}

// gridStride is the launch shape KERNELS.md recommends for grid-stride kernels over n items.
func gridStride(n int) (Dim3, Dim3) {
	g := min(max((n+255)/256, 1), 4096)
	return Dim3{g, 1, 1}, Dim3{256, 1, 1}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// need panics unless buffer b holds n elements of size bytes; a zero Buffer passes when
// optional is set.
func need(op, arg string, b Buffer, n, size int, optional bool) {
	if optional && b.Ptr == 0 {
		return
	}
	if b.Ptr == 0 && n > 0 {
		panic(fmt.Sprintf("cuda: %s: %s is a null buffer", op, arg))
	}
	if n*size > b.Size {
		panic(fmt.Sprintf("cuda: %s: %s has %d bytes, needs %d elements of %d bytes", op, arg, b.Size, n, size))
	}
}
