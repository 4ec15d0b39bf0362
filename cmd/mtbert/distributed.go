package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mtbert/mtbert/mtl/dist"
)

// distFlags are the data-parallel flags of train and pretrain.
type distFlags struct {
	mode    *string
	timeout *time.Duration
}

func addDistFlags(fs *flag.FlagSet) distFlags {
	return distFlags{
		mode:    fs.String("distributed", "auto", "data-parallel training: mpi (one rank of mpirun -np N or srun --mpi=pmix; each rank runs 1/N of every batch, gradients summed with MPI_Allreduce, rank 0 writes), none (one process), or auto (mpi when an MPI launcher's environment is present: OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK)"),
		timeout: fs.Duration("dist-timeout", dist.DefaultTimeout, "with -distributed: how long a rank waits in one MPI call (for a dead or hung rank, or rank 0's evaluation) before it gives up"),
	}
}

// open returns the run's Collective, saying on stderr (rank 0) which it is.
func (f distFlags) open(cmd string, stderr io.Writer) (dist.Collective, error) {
	c, err := dist.Open(*f.mode, os.Getenv)
	if err != nil {
		return nil, err
	}
	if m, ok := c.(*dist.MPI); ok {
		m.Timeout = *f.timeout
	}
	if c.Size() > 1 && c.Rank() == 0 {
		fmt.Fprintf(stderr, "mtbert %s: data-parallel over %d ranks (%s); rank 0 writes the run\n", cmd, c.Size(), c)
	}
	return c, nil
}
