// Package dist is the seam between the trainer and a collective-communication library for
// data-parallel training: the Collective interface (rank, size, an in-place float32 sum over
// every rank, a barrier, an abort), Local (one process, no communication), and MPI, which
// reaches an MPI library (Open MPI 4's libmpi.so.40, or MPICH's libmpi.so.12) through purego,
// without cgo, so that CGO_ENABLED=0 builds keep working and a binary without MPI runs on one
// process as before.
//
// The trainer (mtl.Trainer.Dist) depends on Collective only: an NCCL backend for GPUs (same
// launcher, same ranks, device buffers) is another implementation of it. Open picks the
// implementation from -distributed mpi|none|auto; Detect reads the launcher's environment.
//
// New work: another backend goes in its own file beside mpi.go and in Open's switch; the
// trainer does not change. dist imports nothing of mtl (it sits below mtl in the import
// flow, so that mtl can hold a Collective).
package dist
