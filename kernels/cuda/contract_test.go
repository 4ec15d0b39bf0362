package cuda

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestKernelContract keeps the Go launches in step with src/KERNELS.md and the embedded PTX:
// every kernel KERNELS.md documents (outside sections marked [planned]) has a Go launch, and
// every kernel the Go side launches is an .entry of the embedded module it is launched from.
func TestKernelContract(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(pkgDir, "src", "KERNELS.md"))
	if err != nil {
		t.Skipf("no src/KERNELS.md: %v", err)
	}
	documented := map[string]bool{}
	planned := false
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "## ") {
			planned = strings.Contains(line, "[planned]")
		}
		if m := regexp.MustCompile(`^### (mt_\w+)\(`).FindStringSubmatch(line); m != nil && !planned && !strings.Contains(line, "[planned]") {
			documented[m[1]] = true
		}
	}
	// The launches: s.launch("module", "mt_name", ...) in the non-test Go files.
	launched := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(pkgDir, "*.go"))
	re := regexp.MustCompile(`launch\("(\w+)", "(mt_\w+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			launched[m[2]] = m[1]
		}
	}
	for k := range documented {
		if _, ok := launched[k]; !ok {
			t.Errorf("KERNELS.md documents %s but no Go wrapper launches it", k)
		}
	}
	for k, mod := range launched {
		ptx, err := PTX(mod)
		if err != nil {
			t.Errorf("%s: %v", k, err)
			continue
		}
		if !regexp.MustCompile(`\.entry\s+` + k + `\(`).Match(ptx) {
			t.Errorf("%s is launched from module %s, whose embedded PTX has no .entry %s", k, mod, k)
		}
	}
	t.Logf("%d kernels documented, %d launched from Go, modules %v", len(documented), len(launched), Modules())
}

// TestKernelSignatures checks every Go launch against the parameter list KERNELS.md gives
// for the kernel: the same number of arguments, each encoded for its C type (a pointer by
// Ptr or DPtr, int by I32, long long by I64, unsigned long long by U64, float by F32).
func TestKernelSignatures(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(pkgDir, "src", "KERNELS.md"))
	if err != nil {
		t.Skipf("no src/KERNELS.md: %v", err)
	}
	sigs := map[string][]string{}
	same := map[string]string{}
	head := regexp.MustCompile(`^### (mt_\w+)\((.*)\)`)
	for _, line := range strings.Split(string(doc), "\n") {
		m := head.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		params := m[2]
		if i := strings.Index(params, ")"); i >= 0 {
			params = params[:i]
		}
		if rest, ok := strings.CutPrefix(params, "same parameters as "); ok {
			same[m[1]] = strings.TrimSpace(rest)
			continue
		}
		var kinds []string
		for _, p := range strings.Split(params, ",") {
			kinds = append(kinds, encoderFor(p))
		}
		sigs[m[1]] = kinds
	}
	for k, v := range same {
		sigs[k] = sigs[v]
	}
	fset := token.NewFileSet()
	files, _ := filepath.Glob(filepath.Join(pkgDir, "*.go"))
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 5 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "launch" {
				return true
			}
			lit, ok := call.Args[1].(*ast.BasicLit)
			if !ok {
				// A computed kernel name would escape this check: launches name their kernel.
				t.Errorf("%s: launch with a kernel name that is not a string literal", fset.Position(call.Pos()))
				return true
			}
			name := strings.Trim(lit.Value, `"`)
			want, ok := sigs[name]
			if !ok {
				return true // TestKernelContract reports undocumented launches
			}
			args := call.Args[5:]
			pos := fset.Position(call.Pos())
			if len(args) != len(want) {
				t.Errorf("%s:%d: %s launched with %d arguments, KERNELS.md gives %d", filepath.Base(pos.Filename), pos.Line, name, len(args), len(want))
				return true
			}
			for i, a := range args {
				enc := "?"
				if c, ok := a.(*ast.CallExpr); ok {
					if id, ok := c.Fun.(*ast.Ident); ok {
						enc = id.Name
					}
				}
				if enc == "DPtr" {
					enc = "Ptr"
				}
				if enc != want[i] {
					t.Errorf("%s:%d: %s argument %d encoded by %s, KERNELS.md's type wants %s", filepath.Base(pos.Filename), pos.Line, name, i, enc, want[i])
				}
			}
			checked++
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no launches checked")
	}
	t.Logf("%d launches checked against KERNELS.md", checked)
}

// encoderFor maps a C parameter declaration to the Launch argument encoder its value needs.
func encoderFor(decl string) string {
	d := strings.TrimSpace(decl)
	switch {
	case strings.Contains(d, "*"):
		return "Ptr"
	case strings.HasPrefix(d, "unsigned long long"):
		return "U64"
	case strings.HasPrefix(d, "long long"):
		return "I64"
	case strings.HasPrefix(d, "int"):
		return "I32"
	case strings.HasPrefix(d, "float"):
		return "F32"
	}
	return "unknown C type " + d
}

// TestModulesLoad loads every embedded module (on a GPU: the JIT accepts the PTX) and reports
// each kernel's registers, local memory (spills) and static shared memory; every kernel must
// accept the 256-thread blocks the launches use.
func TestModulesLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		entry := regexp.MustCompile(`\.entry\s+(\w+)\(`)
		for _, mod := range Modules() {
			m, err := c.Module(mod)
			if err != nil {
				t.Errorf("module %s: %v", mod, err)
				continue
			}
			if m.InfoLog != "" {
				t.Logf("module %s: JIT info log: %s", mod, m.InfoLog)
			}
			ptx, _ := PTX(mod)
			for _, e := range entry.FindAllSubmatch(ptx, -1) {
				name := string(e[1])
				f, err := m.Function(name)
				if err != nil {
					t.Errorf("%s.%s: %v", mod, name, err)
					continue
				}
				attr := func(a FuncAttribute) int {
					v, err := f.Attribute(a)
					if err != nil {
						t.Errorf("%s: attribute %d: %v", name, a, err)
					}
					return v
				}
				regs, local, shared, maxT := attr(FuncNumRegs), attr(FuncLocalSizeBytes), attr(FuncSharedSizeBytes), attr(FuncMaxThreadsPerBlock)
				t.Logf("%-14s %-34s regs %3d  local %5d B  static smem %6d B  max threads %4d", mod, name, regs, local, shared, maxT)
				if maxT < 256 {
					t.Errorf("%s: at most %d threads per block (too many registers?), launches use up to 256", name, maxT)
				}
			}
		}
	})
}
