package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// BuildEmulator builds the host emulation of the driver (emu/build.sh under pkgDir, the
// kernels/cuda source folder) into a folder of the temporary directory named after a hash of
// the emulator's and kernels' sources and the compiler, so an unchanged tree reuses the
// library; MTBERT_EMU_REBUILD forces a build. It returns the library's path (for LibEnv) and a
// line to print, or "" and why there is none (no script, no C++ compiler: clang++-19, clang++,
// g++ or $CXX), or an error when the script exists and fails. Tests of packages above this one
// use it to run on the emulation.
func BuildEmulator(pkgDir string) (lib, msg string, err error) {
	script, _ := filepath.Abs(filepath.Join(pkgDir, "emu", "build.sh"))
	if _, err := os.Stat(script); err != nil {
		return "", "no emulator: " + script + " is missing", nil
	}
	cxx := os.Getenv("CXX")
	if cxx == "" {
		for _, c := range []string{"clang++-19", "clang++", "g++"} {
			if _, err := exec.LookPath(c); err == nil {
				cxx = c
				break
			}
		}
	}
	if cxx == "" {
		return "", "no emulator: no C++ compiler (clang++-19, clang++, g++ or $CXX) to build emu/build.sh", nil
	}
	h := sha256.New()
	io.WriteString(h, cxx)
	var files []string
	for _, pat := range []string{"emu/*", "src/*.cu", "src/*.cuh", "src/*.h"} {
		m, _ := filepath.Glob(filepath.Join(pkgDir, pat))
		files = append(files, m...)
	}
	sort.Strings(files)
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			continue
		}
		b, _ := os.ReadFile(f)
		rel, _ := filepath.Rel(pkgDir, f) // the same sources hash alike from any package's tests
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	dir := filepath.Join(os.TempDir(), "mtbert-cuda-emu-"+hex.EncodeToString(h.Sum(nil))[:16])
	lib = filepath.Join(dir, "libmtcuda_emu.so")
	if _, err := os.Stat(lib); err == nil && os.Getenv("MTBERT_EMU_REBUILD") == "" {
		return lib, fmt.Sprintf("emulator %s (cached build of these sources, compiler %s)", lib, cxx), nil
	}
	start := time.Now()
	cmd := exec.Command("bash", script, dir)
	cmd.Env = append(os.Environ(), "CXX="+cxx)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("%s %s (CXX=%s): %v\n%s", script, dir, cxx, err, out)
	}
	return lib, fmt.Sprintf("built emulator %s with %s in %.1fs", lib, cxx, time.Since(start).Seconds()), nil
}

// RealEnv is the environment variable that, set to 1, makes tests use the real driver
// (libcuda.so.1) instead of the host emulation.
const RealEnv = "MTBERT_CUDA_REAL"

// TestLibrary is the driver a test of a package above this one should use: the real driver
// (lib "") when RealEnv is 1 or LibEnv already names a library, else the host emulation built
// from srcDir (the kernels/cuda folder, relative to the test's package), or a reason to skip
// when no C++ compiler can build it. A build failure is an error, not a skip. Tests set LibEnv
// to a non-empty lib before opening a device.
func TestLibrary(srcDir string) (lib, skip string, err error) {
	if os.Getenv(RealEnv) == "1" || os.Getenv(LibEnv) != "" {
		return "", "", nil
	}
	lib, msg, err := BuildEmulator(srcDir)
	if err != nil || lib != "" {
		return lib, "", err
	}
	return "", msg, nil
}
