package main

import (
	"encoding/json"
	"os"
	"testing"
)

// TestGPUCheckReport checks the report of scripts/gpu-check.sh named by
// MTBERT_GPU_CHECK_REPORT (.ci/run sets it after the script's dry run on the host emulation;
// skipped otherwise): every check is there and none failed, bench bert reports peak device
// memory and no driver allocation once warm, and the training run logged every step.
func TestGPUCheckReport(t *testing.T) {
	path := os.Getenv("MTBERT_GPU_CHECK_REPORT")
	if path == "" {
		t.Skip("MTBERT_GPU_CHECK_REPORT is not set (.ci/run sets it after scripts/gpu-check.sh's dry run)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Mode, Device string
		Failed       int
		Checks       []struct {
			Name, Status string
			Figures      json.RawMessage
		}
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if rep.Mode == "" || rep.Device == "" || rep.Failed != 0 {
		t.Errorf("mode %q device %q failed %d", rep.Mode, rep.Device, rep.Failed)
	}
	figs := map[string]json.RawMessage{}
	for _, c := range rep.Checks {
		figs[c.Name] = c.Figures
		if c.Status != "pass" && c.Status != "skip" {
			t.Errorf("check %s: %s", c.Name, c.Status)
		}
	}
	for _, name := range []string{"conformance", "jit", "bert_vs_cpu", "train_vs_cpu", "gemm", "attention", "bench_bert", "train_run", "torch"} {
		if _, ok := figs[name]; !ok {
			t.Errorf("check %s missing from the report", name)
		}
	}
	var bb map[string]struct {
		TokensPerS   float64 `json:"tokens_per_s"`
		PeakDeviceMB float64 `json:"peak_device_mb"`
		DriverAllocs *int64  `json:"device_driver_allocs_after_warmup"`
	}
	if err := json.Unmarshal(figs["bench_bert"], &bb); err != nil || len(bb) == 0 {
		t.Fatalf("bench_bert figures %s: %v", figs["bench_bert"], err)
	}
	for k, r := range bb {
		if r.TokensPerS <= 0 || r.PeakDeviceMB <= 0 || r.DriverAllocs == nil || *r.DriverAllocs != 0 {
			t.Errorf("bench bert %s: %+v", k, r)
		}
	}
	var tr struct {
		GPUSteps int               `json:"gpu_steps"`
		CPUSteps int               `json:"cpu_steps"`
		GPU      []json.RawMessage `json:"gpu"`
	}
	if err := json.Unmarshal(figs["train_run"], &tr); err != nil {
		t.Fatal(err)
	}
	var cpu struct {
		CPU []json.RawMessage `json:"cpu"`
	}
	json.Unmarshal(figs["train_run"], &cpu)
	if len(tr.GPU) != tr.GPUSteps || len(cpu.CPU) != tr.CPUSteps || tr.GPUSteps == 0 {
		t.Errorf("train_run: %d GPU and %d CPU loss lines, want %d and %d", len(tr.GPU), len(cpu.CPU), tr.GPUSteps, tr.CPUSteps)
	}
	var gemm struct {
		Peak    map[string]float64 `json:"h100_dense_bf16_peak_tflops"`
		Results map[string]any     `json:"results"`
	}
	if err := json.Unmarshal(figs["gemm"], &gemm); err != nil || len(gemm.Results) == 0 || gemm.Peak["sxm"] == 0 {
		t.Errorf("gemm figures %s: %v", figs["gemm"], err)
	}
}
