package dist

import (
	"fmt"
	"os"
	"strconv"
)

// Collective is a group of Size processes (ranks) that run the same program and
// communicate. Every rank must make the same calls in the same order with buffers of the
// same length; a call blocks until every rank has made it.
type Collective interface {
	// Rank is this process's index in [0, Size); Size the number of processes.
	Rank() int
	Size() int
	// AllreduceSum replaces buf, on every rank, with the element-wise sum of every rank's
	// buf. Every rank receives the same bits.
	AllreduceSum(buf []float32) error
	// Barrier returns once every rank has called it.
	Barrier() error
	// Abort ends every rank of the group (exit status code), after writing msg on standard
	// error: for a rank that cannot go on, so that the others do not wait for it forever.
	Abort(code int, msg string)
	// Close ends this rank's part in the group (MPI_Finalize). After Close no call is made.
	Close() error
	// String names the backend and the group, for the log: "mpi: rank 0 of 2 (Open MPI v4.1.4)".
	String() string
}

// Local is a group of one: the single-process path, no communication.
type Local struct{}

// Rank is 0.
func (Local) Rank() int { return 0 }

// Size is 1.
func (Local) Size() int { return 1 }

// AllreduceSum leaves buf as it is: the sum over one rank.
func (Local) AllreduceSum([]float32) error { return nil }

// Barrier returns at once.
func (Local) Barrier() error { return nil }

// Abort writes msg and exits.
func (Local) Abort(code int, msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(code)
}

// Close does nothing.
func (Local) Close() error { return nil }

func (Local) String() string { return "none: one process" }

// Launcher is what Detect found in the environment: the launcher that started this process
// as one of several, and the size it announces.
type Launcher struct {
	// Name is "mpirun (Open MPI)", "PMI (srun --mpi=pmi2, MPICH's mpiexec)", "PMIx (srun
	// --mpi=pmix, prterun)" or "srun without an MPI plugin".
	Name string
	// Size is the number of processes it started (0 when it does not say).
	Size int
	// Var is the variable Name was read from.
	Var string
}

// Detect reads the environment (getenv is os.Getenv in use) for an MPI launcher:
// OMPI_COMM_WORLD_SIZE (Open MPI's mpirun), PMI_SIZE (PMI-1/2: MPICH's hydra, srun
// --mpi=pmi2), PMIX_RANK (PMIx: srun --mpi=pmix, prterun). It also recognises srun having
// started several tasks without an MPI plugin (SLURM_STEP_NUM_TASKS > 1 and none of the
// above), where MPI_Init would make each task a world of its own. ok is false when no
// launcher started this process.
func Detect(getenv func(string) string) (l Launcher, ok bool) {
	size := func(v string) int { n, _ := strconv.Atoi(getenv(v)); return n }
	switch {
	case getenv("OMPI_COMM_WORLD_SIZE") != "":
		return Launcher{"mpirun (Open MPI)", size("OMPI_COMM_WORLD_SIZE"), "OMPI_COMM_WORLD_SIZE"}, true
	case getenv("PMI_SIZE") != "":
		return Launcher{"PMI (srun --mpi=pmi2, MPICH's mpiexec)", size("PMI_SIZE"), "PMI_SIZE"}, true
	case getenv("PMIX_RANK") != "":
		return Launcher{"PMIx (srun --mpi=pmix, prterun)", size("SLURM_STEP_NUM_TASKS"), "PMIX_RANK"}, true
	case size("SLURM_STEP_NUM_TASKS") > 1:
		return Launcher{"srun without an MPI plugin", size("SLURM_STEP_NUM_TASKS"), "SLURM_STEP_NUM_TASKS"}, true
	}
	return Launcher{}, false
}

// Open returns the Collective that mode asks for: "none" Local; "mpi" the MPI world (an
// error when the library cannot be loaded or initialised); "auto" (or "") the MPI world when
// Detect finds a launcher, else Local. A world smaller than the launcher announced (the
// processes each initialised MPI alone) is an error, as is srun without an MPI plugin.
func Open(mode string, getenv func(string) string) (Collective, error) {
	l, launched := Detect(getenv)
	switch mode {
	case "none":
		if launched && l.Size > 1 {
			return nil, fmt.Errorf("-distributed none, but %s started %d processes (%s): each would train alone and write the same output folder; use -distributed mpi (or auto), or start one process", l.Name, l.Size, l.Var)
		}
		return Local{}, nil
	case "", "auto":
		if !launched {
			return Local{}, nil
		}
	case "mpi":
	default:
		return nil, fmt.Errorf("-distributed %q: want mpi, none or auto", mode)
	}
	if l.Name == "srun without an MPI plugin" {
		return nil, fmt.Errorf("srun started %d tasks without an MPI plugin (no PMI_SIZE or PMIX_RANK): run srun --mpi=pmix (Open MPI 4 from Debian) or --mpi=pmi2, see srun --mpi=list", l.Size)
	}
	c, err := OpenMPI(getenv(LibEnv))
	if err != nil {
		return nil, err
	}
	if l.Size > 0 && c.Size() != l.Size {
		c.Close()
		return nil, fmt.Errorf("%s announced %d processes (%s) but the MPI world has %d: the library %s is not the one the launcher belongs to", l.Name, l.Size, l.Var, c.Size(), c.lib)
	}
	return c, nil
}
