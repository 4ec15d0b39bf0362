package dist

import (
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, c := range []struct {
		mode string
		env  func(string) string
		want string // "local", or a part of the error
	}{
		{"auto", env(), "local"},
		{"", env(), "local"},
		{"none", env(), "local"},
		{"none", env("OMPI_COMM_WORLD_SIZE", "1"), "local"},
		{"none", env("OMPI_COMM_WORLD_SIZE", "2"), "started 2 processes"},
		{"auto", env("SLURM_STEP_NUM_TASKS", "4"), "without an MPI plugin"},
		{"mpi", env("SLURM_STEP_NUM_TASKS", "4"), "srun --mpi=pmix"},
		{"mpi", env(LibEnv, "/nonexistent/libmpi.so"), "no MPI library"},
		{"gloo", env(), "want mpi, none or auto"},
	} {
		got, err := Open(c.mode, c.env)
		switch {
		case c.want == "local":
			if _, ok := got.(Local); !ok || err != nil {
				t.Errorf("Open(%q): %v, %v; want Local", c.mode, got, err)
			}
		case err == nil || !strings.Contains(err.Error(), c.want):
			t.Errorf("Open(%q): error %v, want one saying %q", c.mode, err, c.want)
		}
	}
	if l, ok := Detect(env("PMIX_RANK", "0", "SLURM_STEP_NUM_TASKS", "3")); !ok || l.Size != 3 || !strings.Contains(l.Name, "PMIx") {
		t.Errorf("Detect under srun --mpi=pmix: %+v, %v", l, ok)
	}
}

// TestLocal: the group of one sums nothing away.
func TestLocal(t *testing.T) {
	var c Collective = Local{}
	buf := []float32{1, 2}
	if err := c.AllreduceSum(buf); err != nil || buf[0] != 1 || buf[1] != 2 || c.Size() != 1 || c.Rank() != 0 || c.Barrier() != nil {
		t.Fatalf("Local: %v %v", buf, err)
	}
}
