package main

import (
	"os/exec"
	"strings"
	"testing"
)

// layer gives each top-level package its place in the one-way import flow
// kernels <- tensor <- autograd <- nn <- {bert, mtl} <- bench <- cmd.
var layer = map[string]int{"kernels": 1, "tensor": 2, "autograd": 3, "nn": 4, "bert": 5, "mtl": 5, "bench": 6, "cmd": 7}

// TestImportsFlowOneWay lists every package's imports with go list and fails on any import of
// a package at a higher layer, or of bert importing mtl (a sub-package of the same top-level
// package is fine).
func TestImportsFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/mtbert/mtbert/...").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	const mod = "github.com/mtbert/mtbert/"
	top := func(p string) string {
		r := strings.TrimPrefix(p, mod)
		if i := strings.IndexByte(r, '/'); i >= 0 {
			r = r[:i]
		}
		return r
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		from := top(f[0])
		lf, ok := layer[from]
		if !ok {
			t.Errorf("package %s is outside the layer map", f[0])
			continue
		}
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			to := top(imp)
			checked++
			if to == from {
				continue
			}
			// bert and mtl share a layer, but only mtl builds on bert (ENGINEERING.md §1).
			if lt := layer[to]; lt > lf || (lt == lf && !(from == "mtl" && to == "bert")) {
				t.Errorf("%s imports %s against the flow kernels <- tensor <- autograd <- nn <- bert, mtl <- bench <- cmd", f[0], imp)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no project imports found")
	}
}

// cudaImporters are the only packages outside kernels/cuda that may depend on it: the GPU
// encoder, the benchmarks (whose options name a CUDA context) and the command. bert and mtl
// take a GPU encoder through the bert.Encoder interface.
var cudaImporters = []string{"bert/cudabert", "bench", "cmd/",
	// The multitask trainer's GPU step (an mtl.DeviceStep over cudabert.MultiTrainer): mtl
	// itself only knows the interface.
	"mtl/cudamtl"}

// TestOnlyCUDABertImportsCUDA fails when a package other than cudaImporters depends on
// kernels/cuda, directly or through another package, in its build or in its tests.
func TestOnlyCUDABertImportsCUDA(t *testing.T) {
	const mod = "github.com/mtbert/mtbert/"
	const cudaPkg = mod + "kernels/cuda"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}} {{join .TestImports \" \"}} {{join .XTestImports \" \"}}", mod+"...").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	allowed := func(p string) bool {
		r := strings.TrimPrefix(p, mod)
		if r == "kernels/cuda" || strings.HasPrefix(r, "kernels/cuda/") {
			return true
		}
		for _, a := range cudaImporters {
			if r == strings.TrimSuffix(a, "/") || (strings.HasSuffix(a, "/") && strings.HasPrefix(r, a)) {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		seen[strings.TrimPrefix(f[0], mod)] = true
		if allowed(f[0]) {
			continue
		}
		for _, d := range f[1:] {
			if d == cudaPkg || strings.HasPrefix(d, cudaPkg+"/") {
				t.Errorf("%s depends on %s: only %v may (the rest take a bert.Encoder)", f[0], d, cudaImporters)
				break
			}
		}
	}
	for _, p := range []string{"bert", "mtl", "bert/cudabert"} {
		if !seen[p] {
			t.Errorf("go list did not list %s", p)
		}
	}
}

// mtlLayer orders the packages under mtl: corpus (data formats) and score (metrics) below the
// model (mtl itself), the jobs built on the model (train, serve, bulk) above it, and the demo
// corpus, which writes a training config, above train. A package imports only packages of a
// lower rank (the internal test helpers: mtltest imports none of mtl, fixture trains a model).
var mtlLayer = map[string]int{
	"mtl/internal/mtltest": 0, "mtl/dist": 0, "mtl/corpus": 1, "mtl/score": 2, "mtl": 3,
	"mtl/train": 4, "mtl/serve": 4, "mtl/bulk": 4, "mtl/mtt": 4, "mtl/synth": 5, "mtl/internal/fixture": 5,
	"mtl/cudamtl": 5, // the GPU step of mtl.Trainer, with train.Options.Device
}

// TestMTLPackagesFlowOneWay fails on an import between mtl's packages against mtlLayer, and
// on a package under mtl that mtlLayer does not place.
func TestMTLPackagesFlowOneWay(t *testing.T) {
	const mod = "github.com/mtbert/mtbert/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"mtl/...").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		from := strings.TrimPrefix(f[0], mod)
		lf, ok := mtlLayer[from]
		if !ok {
			t.Errorf("package %s is not placed in mtlLayer", from)
			continue
		}
		for _, imp := range f[1:] {
			to := strings.TrimPrefix(imp, mod)
			lt, ok := mtlLayer[to]
			if !ok {
				continue // not under mtl
			}
			checked++
			if lt >= lf {
				t.Errorf("%s imports %s against the flow corpus <- score <- mtl <- train, serve, bulk <- synth", from, to)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no imports between mtl's packages found")
	}
}
