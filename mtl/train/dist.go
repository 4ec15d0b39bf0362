package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mtbert/mtbert/mtl/dist"
)

// Data-parallel runs (Options.Dist of Size > 1): every rank runs Train over the same config;
// rank 0 (the lead) does all that Train does alone, the others (followers) only train:
// they read Out/last to resume but write nothing, evaluate nothing and draw no progress.
// The ranks meet at a barrier once the lead has put Out in order (recovered or cleared it),
// and agree before each step on whether to stop (one rank's SIGINT stops all of them at the
// same step; the lead then saves Out/last).

// follower reports whether this process is a rank other than 0 of a distributed run.
func follower(opts Options) bool {
	return opts.Dist != nil && opts.Dist.Size() > 1 && opts.Dist.Rank() != 0
}

// rendezvous waits until every rank has reached it (after the lead's preparation of Out).
func rendezvous(opts Options) error {
	if opts.Dist == nil || opts.Dist.Size() == 1 {
		return nil
	}
	if err := opts.Dist.Barrier(); err != nil {
		return fmt.Errorf("waiting for the other ranks: %w", err)
	}
	return nil
}

// agreeStop reports whether any rank's context is done; on one process, whether ctx is.
func agreeStop(ctx context.Context, c dist.Collective) (bool, error) {
	flag := []float32{0}
	if ctx.Err() != nil {
		flag[0] = 1
	}
	if c != nil && c.Size() > 1 {
		if err := c.AllreduceSum(flag); err != nil {
			return false, fmt.Errorf("agreeing on a stop: %w", err)
		}
	}
	return flag[0] > 0, nil
}

// follow is Train on a follower rank: after the lead has prepared Out, resume from Out/last
// when asked, then take the same steps as the lead until the same end (the run's last step,
// or MaxSteps). It returns a nil summary (the lead writes it), or an error wrapping
// ErrInterrupted when a signal stopped the ranks, at the same step as the lead's.
func follow(ctx context.Context, r *Run, opts Options) (*RunSummary, error) {
	tr := r.Trainer
	if err := rendezvous(opts); err != nil {
		return nil, err
	}
	if opts.Resume {
		last := filepath.Join(opts.Out, LastDir)
		if _, err := os.Stat(last); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("resume: rank %d: %s not found: the ranks must share the output folder", opts.Dist.Rank(), last)
		}
		if err := resume(r, last); err != nil {
			return nil, fmt.Errorf("rank %d: %w", opts.Dist.Rank(), err)
		}
	}
	end := r.TotalSteps
	if opts.MaxSteps > 0 && opts.MaxSteps < end {
		end = opts.MaxSteps
	}
	for tr.State.Epoch < r.Config.Training.Epochs && tr.State.Step < end {
		stop, err := agreeStop(ctx, opts.Dist)
		if err != nil {
			return nil, err
		}
		if stop {
			return nil, fmt.Errorf("%w after step %d (rank %d; rank 0 saves %s)", ErrInterrupted, tr.State.Step, opts.Dist.Rank(), filepath.Join(opts.Out, LastDir))
		}
		if _, err := tr.Step(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
