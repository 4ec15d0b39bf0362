package bulk

import (
	"errors"
	"fmt"
	"strconv"
)

// ShardEnv is the shard a scheduler gave this process, read from its environment by
// ShardFromEnv.
type ShardEnv struct {
	// Shard and Shards are the index (0-based) and the count.
	Shard, Shards int
	// Source says where they came from, for the log:
	// "Slurm job array (SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_COUNT=4)".
	Source string
}

// ErrNoShardEnv is wrapped by ShardFromEnv's error when no scheduler's variables are set.
var ErrNoShardEnv = errors.New("no Slurm job array (SLURM_ARRAY_TASK_ID) or Kubernetes Indexed Job (JOB_COMPLETION_INDEX) in the environment")

// ShardFromEnv reads this process's shard from the environment of the scheduler that
// started it (getenv is os.Getenv in use, a map in tests):
//
//   - a Slurm job array: SLURM_ARRAY_TASK_ID, with shards as the count when it is given (so
//     that a single task re-run as --array=2 is still shard 2 of 4), else
//     SLURM_ARRAY_TASK_COUNT as the count, or
//     else SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_MAX (the index is then ID−MIN and the
//     count MAX−MIN+1, so --array=1-4 works as well as 0-3); an array with a step or a list
//     (--array=0-6:2, --array=1,5) is refused, its indexes not being 0..N−1;
//   - a Kubernetes Indexed Job: JOB_COMPLETION_INDEX, with the count from shards (the
//     -shards flag, 0 when not given) or MTBERT_SHARDS, since Kubernetes does not export the
//     Job's completions.
//
// Slurm wins when both are set. None set is an error wrapping ErrNoShardEnv: "auto" outside
// a scheduler must not quietly process every input as shard 0 of 1.
func ShardFromEnv(getenv func(string) string, shards int) (ShardEnv, error) {
	num := func(name string) (int, error) {
		v := getenv(name)
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%q is not a non-negative integer", name, v)
		}
		return n, nil
	}
	if id := getenv("SLURM_ARRAY_TASK_ID"); id != "" {
		i, err := num("SLURM_ARRAY_TASK_ID")
		if err != nil {
			return ShardEnv{}, err
		}
		lo, err := num("SLURM_ARRAY_TASK_MIN")
		if err != nil {
			return ShardEnv{}, err
		}
		hi, err := num("SLURM_ARRAY_TASK_MAX")
		if err != nil {
			return ShardEnv{}, err
		}
		if shards > 0 {
			// The count given: the task id is the shard, so that one task can be run again
			// alone (sbatch --array=2 with -shards 4).
			if i >= shards {
				return ShardEnv{}, fmt.Errorf("Slurm job array: SLURM_ARRAY_TASK_ID=%d is not below -shards %d (with -shards, run the array as --array=0-%d or a part of it)", i, shards, shards-1)
			}
			return ShardEnv{Shard: i, Shards: shards, Source: fmt.Sprintf("Slurm job array (SLURM_ARRAY_TASK_ID=%d, -shards=%d)", i, shards)}, nil
		}
		n := hi - lo + 1
		src := fmt.Sprintf("Slurm job array (SLURM_ARRAY_TASK_ID=%d, SLURM_ARRAY_TASK_MIN=%d, SLURM_ARRAY_TASK_MAX=%d)", i, lo, hi)
		if getenv("SLURM_ARRAY_TASK_COUNT") != "" {
			c, err := num("SLURM_ARRAY_TASK_COUNT")
			if err != nil {
				return ShardEnv{}, err
			}
			if c != n {
				return ShardEnv{}, fmt.Errorf("Slurm job array of %d tasks over indexes %d-%d: -shard auto needs a contiguous array (--array=0-%d, optionally with %%K), not a step or a list", c, lo, hi, c-1)
			}
			src = fmt.Sprintf("Slurm job array (SLURM_ARRAY_TASK_ID=%d, SLURM_ARRAY_TASK_COUNT=%d, SLURM_ARRAY_TASK_MIN=%d)", i, c, lo)
		}
		if n < 1 || i < lo || i > hi {
			return ShardEnv{}, fmt.Errorf("%s: the task id is outside the array", src)
		}
		return ShardEnv{Shard: i - lo, Shards: n, Source: src}, nil
	}
	if getenv("JOB_COMPLETION_INDEX") != "" {
		i, err := num("JOB_COMPLETION_INDEX")
		if err != nil {
			return ShardEnv{}, err
		}
		src := "-shards"
		if shards == 0 {
			if getenv("MTBERT_SHARDS") == "" {
				return ShardEnv{}, fmt.Errorf("Kubernetes Indexed Job (JOB_COMPLETION_INDEX=%d) without a shard count: pass -shards N or set MTBERT_SHARDS to the Job's completions", i)
			}
			if shards, err = num("MTBERT_SHARDS"); err != nil {
				return ShardEnv{}, err
			}
			src = "MTBERT_SHARDS"
		}
		if shards < 1 || i >= shards {
			return ShardEnv{}, fmt.Errorf("Kubernetes Indexed Job: JOB_COMPLETION_INDEX=%d is not below the count %d (%s): the count must equal the Job's completions", i, shards, src)
		}
		return ShardEnv{Shard: i, Shards: shards, Source: fmt.Sprintf("Kubernetes Indexed Job (JOB_COMPLETION_INDEX=%d, %s=%d)", i, src, shards)}, nil
	}
	return ShardEnv{}, fmt.Errorf("-shard auto: %w; give -shard i/N outside a scheduler", ErrNoShardEnv)
}
