package bert

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
)

// Fault injection for the crash-consistent writers of this file's package (WriteFileAtomic,
// WriteDirAtomic). Each calls crashPoint between two of its file-system operations. In a test
// binary only (testing.Testing), MTBERT_CRASH_AT=N makes the N-th call end the process at
// once with status CrashExitCode, as a kill would (no deferred function runs, no buffer is
// flushed), and MTBERT_CRASH_TRACE=FILE appends "N op" for every call. A regular build never
// reads either variable.

// CrashExitCode is the exit status of a process stopped by MTBERT_CRASH_AT.
const CrashExitCode = 86

var (
	crashAt, crashTrace = crashEnv()
	crashCount          atomic.Int64
)

func crashEnv() (int64, string) {
	if !testing.Testing() {
		return 0, ""
	}
	n, _ := strconv.ParseInt(os.Getenv("MTBERT_CRASH_AT"), 10, 64)
	return n, os.Getenv("MTBERT_CRASH_TRACE")
}

// crashPoint marks the end of one operation of a writer (see above).
func crashPoint(op string) {
	if crashAt == 0 && crashTrace == "" {
		return
	}
	n := crashCount.Add(1)
	if crashTrace != "" {
		if f, err := os.OpenFile(crashTrace, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintf(f, "%d %s\n", n, op)
			f.Close()
		}
	}
	if n == crashAt {
		os.Exit(CrashExitCode)
	}
}
