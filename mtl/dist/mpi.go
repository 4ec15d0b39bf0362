package dist

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

// LibEnv names the environment variable that overrides the MPI library OpenMPI loads.
const LibEnv = "MTBERT_MPI_LIB"

// DefaultLibs are the libraries OpenMPI tries, in order: Open MPI 4 and 5 (Debian's
// openmpi-bin, libmpi.so.40), then MPICH (libmpi.so.12).
var DefaultLibs = []string{"libmpi.so.40", "libmpi.so.12"}

// DefaultTimeout is how long one collective call may wait before the rank gives up: the
// other ranks run the same steps, so a wait this long means one of them died or hangs. Rank
// 0 evaluating on dev while the others wait at the next step counts too: raise it
// (MPI.Timeout) for long evaluations.
const DefaultTimeout = 30 * time.Minute

// MPI is the MPI_COMM_WORLD of an MPI library loaded with dlopen (purego, no cgo). Every MPI
// call is made from one goroutine locked to the OS thread that initialised MPI
// (MPI_THREAD_FUNNELED), whatever goroutine calls the methods.
//
// Handles: Open MPI's MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM and MPI_ERRORS_RETURN are the
// addresses of its exported objects ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_op_sum and
// ompi_mpi_errors_return, and MPI_IN_PLACE is (void*)1; MPICH's are the integer constants of
// its mpi.h, and MPI_IN_PLACE is (void*)-1. The world's error handler is MPI_ERRORS_RETURN,
// so a failed call is an error that says which call and why, not an abort inside the
// library.
//
// A call that waits longer than Timeout ends the process with a message naming the call
// (the launcher then ends the other ranks); SIGTERM, which mpirun and srun send to every
// rank when one fails or the job is cancelled, ends it with a message too, instead of the
// silent kill.
type MPI struct {
	// Timeout bounds the wait of one call (DefaultTimeout when 0).
	Timeout time.Duration

	lib, version string
	rank, size   int
	handle       uintptr
	fn           struct{ initThread, commRank, commSize, allreduce, barrier, abort, finalize, errorString, setErrhandler, libVersion uintptr }
	comm, float  uintptr
	sum, inPlace uintptr
	errsReturn   uintptr

	calls     chan func()
	busySince atomic.Int64 // unix nanoseconds at the start of the call in flight, 0 when none
	busyOp    atomic.Pointer[string]
	closeOnce sync.Once
	pin       runtime.Pinner
}

// MPICH's handles (mpi.h of MPICH 3 and 4).
const (
	mpichCommWorld    = 0x44000000
	mpichFloat        = 0x4c00040a
	mpichSum          = 0x58000003
	mpichErrorsReturn = 0x54000001
)

const mpiThreadFunneled = 1

// OpenMPI loads lib (DefaultLibs when ""), initialises MPI and returns the world. An error
// says which library could not be loaded, or which call failed.
func OpenMPI(lib string) (*MPI, error) {
	libs := DefaultLibs
	if lib != "" {
		libs = []string{lib}
	}
	m := &MPI{calls: make(chan func())}
	var errs []string
	for _, l := range libs {
		// RTLD_GLOBAL: Open MPI's components are plugins that resolve libmpi's symbols.
		h, err := purego.Dlopen(l, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			m.lib, m.handle = l, h
			break
		}
		errs = append(errs, err.Error())
	}
	if m.handle == 0 {
		return nil, fmt.Errorf("dist: no MPI library (%s); install Open MPI (Debian: apt-get install openmpi-bin) or set %s to libmpi.so's path", strings.Join(errs, "; "), LibEnv)
	}
	for _, s := range []struct {
		name string
		p    *uintptr
	}{
		{"MPI_Init_thread", &m.fn.initThread}, {"MPI_Comm_rank", &m.fn.commRank}, {"MPI_Comm_size", &m.fn.commSize},
		{"MPI_Allreduce", &m.fn.allreduce}, {"MPI_Barrier", &m.fn.barrier}, {"MPI_Abort", &m.fn.abort},
		{"MPI_Finalize", &m.fn.finalize}, {"MPI_Error_string", &m.fn.errorString},
		{"MPI_Comm_set_errhandler", &m.fn.setErrhandler}, {"MPI_Get_library_version", &m.fn.libVersion},
	} {
		p, err := purego.Dlsym(m.handle, s.name)
		if err != nil {
			return nil, fmt.Errorf("dist: %s: no %s: %v", m.lib, s.name, err)
		}
		*s.p = p
	}
	if comm, err := purego.Dlsym(m.handle, "ompi_mpi_comm_world"); err == nil {
		m.comm = comm
		var err1, err2, err3 error
		m.float, err1 = purego.Dlsym(m.handle, "ompi_mpi_float")
		m.sum, err2 = purego.Dlsym(m.handle, "ompi_mpi_op_sum")
		m.errsReturn, err3 = purego.Dlsym(m.handle, "ompi_mpi_errors_return")
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("dist: %s: Open MPI handles: %v", m.lib, err)
		}
		m.inPlace = 1
	} else {
		m.comm, m.float, m.sum, m.errsReturn = mpichCommWorld, mpichFloat, mpichSum, mpichErrorsReturn
		m.inPlace = ^uintptr(0)
	}
	go m.serve()
	var provided int32
	if err := m.call("MPI_Init_thread", func() uintptr {
		return call(m.fn.initThread, 0, 0, mpiThreadFunneled, uintptr(unsafe.Pointer(&provided)))
	}); err != nil {
		return nil, err
	}
	if provided < mpiThreadFunneled {
		return nil, fmt.Errorf("dist: %s gives thread level %d, below MPI_THREAD_FUNNELED", m.lib, provided)
	}
	var rank, size int32
	err := m.call("MPI_Comm_set_errhandler", func() uintptr { return call(m.fn.setErrhandler, m.comm, m.errsReturn) })
	if err == nil {
		err = m.call("MPI_Comm_rank", func() uintptr { return call(m.fn.commRank, m.comm, uintptr(unsafe.Pointer(&rank))) })
	}
	if err == nil {
		err = m.call("MPI_Comm_size", func() uintptr { return call(m.fn.commSize, m.comm, uintptr(unsafe.Pointer(&size))) })
	}
	if err != nil {
		return nil, err
	}
	m.rank, m.size = int(rank), int(size)
	buf := make([]byte, 8192)
	n := int32(0)
	if m.call("MPI_Get_library_version", func() uintptr {
		return call(m.fn.libVersion, uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)))
	}) == nil && n > 0 {
		m.version, _, _ = strings.Cut(strings.TrimRight(string(buf[:min(int(n), len(buf))]), "\x00\n "), ",")
	}
	go m.watch()
	return m, nil
}

// call makes a C call with integer arguments and returns its result register.
func call(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}

// serve runs the MPI calls on one locked OS thread: the thread that initialises MPI is the
// only one that calls it (MPI_THREAD_FUNNELED).
func (m *MPI) serve() {
	runtime.LockOSThread()
	for f := range m.calls {
		f()
	}
}

// call runs f on the MPI thread, marking the wait for the watchdog, and turns a non-zero
// MPI return code into an error naming op.
func (m *MPI) call(op string, f func() uintptr) error {
	done := make(chan int32)
	m.busyOp.Store(&op)
	m.busySince.Store(time.Now().UnixNano())
	m.calls <- func() { done <- int32(f()) }
	rc := <-done
	m.busySince.Store(0)
	if rc != 0 {
		return fmt.Errorf("dist: %s (rank %d of %d): %s (MPI error %d)", op, m.rank, m.size, m.errorString(rc), rc)
	}
	return nil
}

// errorString is MPI_Error_string of rc (called on the MPI thread).
func (m *MPI) errorString(rc int32) string {
	buf := make([]byte, 1024)
	n := int32(0)
	done := make(chan struct{})
	m.calls <- func() {
		call(m.fn.errorString, uintptr(rc), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)))
		close(done)
	}
	<-done
	return strings.TrimRight(string(buf[:max(0, min(int(n), len(buf)))]), "\x00")
}

// watch ends the process when a call waits longer than Timeout, and on SIGTERM, with a
// message naming the call in flight.
func (m *MPI) watch() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	inFlight := func() string {
		if t := m.busySince.Load(); t != 0 {
			return fmt.Sprintf("while waiting %s in %s", time.Since(time.Unix(0, t)).Round(time.Millisecond), *m.busyOp.Load())
		}
		return "between MPI calls"
	}
	for {
		select {
		case <-term:
			fmt.Fprintf(os.Stderr, "mtbert: rank %d of %d: terminated (SIGTERM) %s: the launcher ends every rank when one fails or the job is cancelled\n", m.rank, m.size, inFlight())
			os.Exit(143)
		case <-tick.C:
			t := m.busySince.Load()
			limit := m.Timeout
			if limit == 0 {
				limit = DefaultTimeout
			}
			if t != 0 && time.Since(time.Unix(0, t)) > limit {
				fmt.Fprintf(os.Stderr, "mtbert: rank %d of %d: gave up %s (timeout %s): another rank has died or hangs\n", m.rank, m.size, inFlight(), limit)
				os.Exit(3)
			}
		}
	}
}

// Rank is this process's rank in MPI_COMM_WORLD.
func (m *MPI) Rank() int { return m.rank }

// Size is the size of MPI_COMM_WORLD.
func (m *MPI) Size() int { return m.size }

// maxCount bounds the elements of one MPI_Allreduce (its count is a C int).
const maxCount = 1 << 28

// AllreduceSum sums buf over every rank in place (MPI_Allreduce with MPI_IN_PLACE, MPI_FLOAT,
// MPI_SUM), in calls of at most 2^28 elements.
func (m *MPI) AllreduceSum(buf []float32) error {
	for len(buf) > 0 {
		n := min(len(buf), maxCount)
		p := &buf[0]
		m.pin.Pin(p)
		err := m.call("MPI_Allreduce", func() uintptr {
			return call(m.fn.allreduce, m.inPlace, uintptr(unsafe.Pointer(p)), uintptr(n), m.float, m.sum, m.comm)
		})
		m.pin.Unpin()
		if err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// Barrier is MPI_Barrier on the world.
func (m *MPI) Barrier() error {
	return m.call("MPI_Barrier", func() uintptr { return call(m.fn.barrier, m.comm) })
}

// Abort writes msg and calls MPI_Abort on the world (from the calling thread: the MPI thread
// may be the one stuck), then exits.
func (m *MPI) Abort(code int, msg string) {
	fmt.Fprintln(os.Stderr, msg)
	call(m.fn.abort, m.comm, uintptr(code))
	os.Exit(code)
}

// Close calls MPI_Finalize.
func (m *MPI) Close() error {
	var err error
	m.closeOnce.Do(func() {
		err = m.call("MPI_Finalize", func() uintptr { return call(m.fn.finalize) })
	})
	return err
}

func (m *MPI) String() string {
	return fmt.Sprintf("mpi: rank %d of %d (%s, %s)", m.rank, m.size, m.version, m.lib)
}
