#!/usr/bin/env bash
# gpu-check.sh: everything mtbert's GPU path needs checked on a real GPU, in one run of a few
# minutes, on a machine with an NVIDIA driver and no Go toolchain or network.
#
#   scripts/gpu-check.sh -build      # here, with Go: static binaries into gpu/ (ignored by git)
#   scripts/gpu-check.sh OUTDIR      # there, from the repository root: runs gpu/ binaries and
#                                    # writes OUTDIR/report.json and OUTDIR/summary.txt
#
# MTBERT_CHECK_DRY=1 runs the whole script on the host emulation of the driver (small shapes,
# a few training steps): CI does (.ci/run), so the script is known to work before a GPU sees it.
# MTBERT_DATA_ROOT (default ../shared/data) holds the examples' data for the 200-step training
# run; without it that run uses the test fixture's config. Each check's log is in OUTDIR/logs.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=$root/gpu

if [ "${1:-}" = "-build" ]; then
	set -e
	mkdir -p "$bin"
	export CGO_ENABLED=0
	go test -c -o "$bin/cuda.test" ./kernels/cuda
	go test -c -o "$bin/cudabert.test" ./bert/cudabert
	go test -c -o "$bin/cudamtl.test" ./mtl/cudamtl
	go build -o "$bin/mtbert" ./cmd/mtbert
	git rev-parse HEAD >"$bin/COMMIT" 2>/dev/null || true
	echo "built into $bin: $(cd "$bin" && ls | tr '\n' ' ')"
	exit 0
fi
if [ $# -ne 1 ]; then
	echo "usage: $0 -build | $0 OUTDIR   (MTBERT_CHECK_DRY=1: on the host emulation)" >&2
	exit 2
fi
out=$1
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
logs=$out/logs
for b in cuda.test cudabert.test cudamtl.test mtbert; do
	[ -x "$bin/$b" ] || { echo "$bin/$b missing: run $0 -build first (with Go)" >&2; exit 2; }
done

dry=${MTBERT_CHECK_DRY:-0}
if [ "$dry" = 1 ]; then
	mode=dry-run-emulation
	export MTBERT_CUDA_BENCH_EMU=1
	if [ -z "${MTBERT_CUDA_LIB:-}" ]; then
		cxx=${CXX:-$(command -v clang++-19 || command -v clang++ || command -v g++)}
		CXX=$cxx bash kernels/cuda/emu/build.sh "$out/emu" >"$logs/emu-build.log" 2>&1 || { echo "dry run: building the emulator failed: $logs/emu-build.log" >&2; exit 1; }
		export MTBERT_CUDA_LIB=$out/emu/libmtcuda_emu.so
	fi
	bertShapes=("1 64 2 16")            # layers hidden batch seq
	benchtime=1x
	gpuSteps=6
	cpuSteps=3
else
	mode=gpu
	export MTBERT_CUDA_REAL=1
	unset MTBERT_CUDA_LIB
	bertShapes=("12 768 32 128" "12 768 8 512")
	benchtime=20x
	gpuSteps=200
	cpuSteps=20
fi

# Each check appends one JSON object to checks (name, status, seconds, log, figures).
checks=()
summary=()
t_start=$(date +%s)
# run NAME TIMEOUT CMD...: runs CMD with its output in logs/NAME.log; sets rc and secs.
run() {
	local name=$1 limit=$2
	shift 2
	local t0
	t0=$(date +%s.%N)
	timeout "$limit" "$@" >"$logs/$name.log" 2>&1
	rc=$?
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
}
# record NAME STATUS FIGURES-JSON NOTE
record() {
	checks+=("{\"name\":\"$1\",\"status\":\"$2\",\"seconds\":$secs,\"log\":\"logs/$1.log\",\"figures\":$3}")
	summary+=("$(printf '%-22s %-5s %6ss  %s' "$1" "$2" "$secs" "$4")")
}
status() { [ "$1" = 0 ] && echo pass || echo fail; }
# benchjson LOG: the Go benchmark lines of LOG as a JSON object name -> {TFLOP/s, us/call}.
benchjson() {
	awk 'BEGIN{printf "{"; n=0}
	/^Benchmark/ {name=$1; sub(/-[0-9]+$/, "", name); tf=""; us="";
		for (i=2;i<NF;i++) { if ($(i+1)=="TFLOP/s") tf=$i; if ($(i+1)=="us/call") us=$i }
		if (tf!="") { printf "%s\"%s\":{\"tflops\":%s,\"us_per_call\":%s}", (n++?",":""), name, tf, (us==""?"null":us) } }
	END{printf "}"}' "$1"
}

# 1. The CUDA conformance suite on the driver (the emulator's in a dry run).
if [ "$dry" = 1 ]; then
	run conformance 300 "$bin/cuda.test" -test.short -test.run 'TestProbe|TestDevices|TestMemcpyRoundTrip|TestModuleLoadErrorCarriesLog'
else
	run conformance 240 "$bin/cuda.test" -test.v
fi
record conformance "$(status $rc)" "{\"passed\":$(grep -c -- '^--- PASS' "$logs/conformance.log"),\"failed\":$(grep -c -- '--- FAIL' "$logs/conformance.log")}" "kernels/cuda tests"

# 2. The JIT of every committed PTX module, with its info log and each kernel's registers.
run jit 120 "$bin/cuda.test" -test.run '^TestModulesLoad$' -test.v
record jit "$(status $rc)" "{\"kernels\":$(grep -c 'max threads' "$logs/jit.log")}" "every PTX module loaded; per-kernel regs/spills in the log"

# 3. BERT on the GPU path against the CPU: inference, gradients, a training step (float32
#    and mixed precision), and the multitask steps of every head kind.
run bert_vs_cpu 300 "$bin/cudabert.test" -test.run 'TestEncoderMatchesCPU|TestGradientsMatchCPU|TestTrainerTracksCPU' -test.v
record bert_vs_cpu "$(status $rc)" "{}" "encoder, gradients, trainer vs the CPU"
run train_vs_cpu 400 "$bin/cudamtl.test" -test.run 'TestStepsMatchCPU' -test.v
diffs=$(grep -o 'largest loss difference [0-9.e+-]*' "$logs/train_vs_cpu.log" | awk '{print $4}' | paste -sd, -)
record train_vs_cpu "$(status $rc)" "{\"loss_diffs\":[${diffs}]}" "4 tasks x 10 steps, f32/mixed/accumulate: loss diffs ${diffs}"

# 4. GEMM: the bf16 tensor-core kernel on BERT's shapes and 8192^3; float32 for reference.
gemmPattern='BenchmarkGemmBF16|BenchmarkGemmF32'
[ "$dry" = 1 ] && gemmPattern='BenchmarkGemmBF16/attn_scores'
run gemm 180 "$bin/cuda.test" -test.run '^$' -test.bench "$gemmPattern" -test.benchtime "$benchtime"
record gemm "$(status $rc)" "{\"h100_dense_bf16_peak_tflops\":{\"sxm\":989.4,\"pcie\":756.5},\"results\":$(benchjson "$logs/gemm.log")}" "TFLOP/s vs H100 dense bf16 peak 989 (SXM) / 756 (PCIe)"

# 5. Fused attention forward and backward (tensor-core and SIMT kernels).
attPattern='BenchmarkFlashAttention'
[ "$dry" = 1 ] && attPattern='BenchmarkFlashAttention/fwd$|BenchmarkFlashAttention/fwd_bwd$'
run attention 180 "$bin/cuda.test" -test.run '^$' -test.bench "$attPattern" -test.benchtime "$benchtime"
record attention "$(status $rc)" "$(benchjson "$logs/attention.log")" "B32 H12 T128 D64 fwd, fwd+bwd"

# 6. bench bert on the GPU path: inference and training at each shape.
bb=()
bstat=0
t_bb=$(date +%s)
for sh in "${bertShapes[@]}"; do
	read -r L H B T <<<"$sh"
	for m in infer train; do
		name="bench_bert_${m}_${B}x${T}"
		run "$name" 180 "$bin/mtbert" bench bert -device cuda -mode "$m" -layers "$L" -hidden "$H" -batch "$B" -seq "$T" -reps 5
		[ "$rc" = 0 ] || bstat=1
		j=$(tr -d '\n' <"$logs/$name.log" | grep -o '{.*}' || echo null)
		bb+=("\"${m}_${B}x${T}\":${j}")
	done
done
secs=$(awk -v a="$t_bb" -v b="$(date +%s)" 'BEGIN{print b-a}')
record bench_bert "$(status $bstat)" "{$(IFS=,; echo "${bb[*]}")}" "bench bert -device cuda, infer and train (tokens/s, ms/step, peak device MB)"

# 7. A training run on the GPU path (the examples' config) against the CPU's first steps.
data=${MTBERT_DATA_ROOT:-$root/../shared/data}
cfg=$root/examples/public.yaml
cfgArgs=(-config "$cfg" -data-root "$data")
if [ "$dry" = 1 ] || [ ! -d "$data" ]; then
	# The fixture with one attention head of 32 dimensions (the GPU's attention dropout).
	cfg=$out/fixture.yaml
	sed -e 's/heads: 2/heads: 1/' -e "s#vocab: vocab.txt#vocab: $root/mtl/testdata/train/vocab.txt#" mtl/testdata/train/config.yaml >"$cfg"
	cfgArgs=(-config "$cfg" -data-root "$root/mtl/testdata/train")
fi
run train_gpu 300 "$bin/mtbert" train "${cfgArgs[@]}" -out "$out/train-gpu" -force -device cuda -max-steps "$gpuSteps" -quiet
trc=$rc
tsecs=$secs
run train_cpu 240 "$bin/mtbert" train "${cfgArgs[@]}" -out "$out/train-cpu" -force -device cpu -max-steps "$cpuSteps" -quiet
losses() { grep -v '"split"' "$1/metrics.jsonl" 2>/dev/null | grep '"loss"' | paste -sd, -; }
maxdiff=$(paste -d' ' <(losses "$out/train-gpu" | tr ',' '\n' | grep -o '"loss":[^,}]*' | cut -d: -f2) \
	<(losses "$out/train-cpu" | tr ',' '\n' | grep -o '"loss":[^,}]*' | cut -d: -f2) |
	awk 'NF==2 {d=$1-$2; if (d<0) d=-d; if (d>m) m=d} END{printf "%.3g", m+0}')
secs=$tsecs
tstat=$(status $trc)
[ "$rc" = 0 ] || tstat=fail
record train_run "$tstat" "{\"config\":\"$cfg\",\"gpu_steps\":$gpuSteps,\"cpu_steps\":$cpuSteps,\"max_loss_diff_first_cpu_steps\":$maxdiff,\"gpu\":[$(losses "$out/train-gpu")],\"cpu\":[$(losses "$out/train-cpu")]}" "$gpuSteps GPU steps; first $cpuSteps vs CPU: max loss diff $maxdiff"

# 8. PyTorch beside ours, where it has CUDA (a CPU-only PyTorch runs the script's small
#    shapes in a dry run, to check it).
py=""
for p in python3 /usr/bin/python3; do # the first with torch
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' >/dev/null 2>&1; then py=$p; break; fi
done
if [ -z "$py" ]; then
	secs=0
	record torch skip "{\"reason\":\"no PyTorch\"}" "no PyTorch on this machine"
else
	dev=cuda
	[ "$dry" = 1 ] && dev=cpu
	run torch 240 "$py" scripts/gpu-check-torch.py --device "$dev" $([ "$dry" = 1 ] && echo --small)
	j=$(grep '^{' "$logs/torch.log" | tail -n 1)
	if [ "$rc" = 3 ]; then record torch skip "${j:-null}" "PyTorch has no CUDA"; else record torch "$(status $rc)" "${j:-null}" "torch GEMM, SDPA, BERT-like step ($dev)"; fi
fi

total=$(( $(date +%s) - t_start ))
device=$("$bin/mtbert" bench bert -device cuda -mode infer -layers 1 -hidden 64 -batch 1 -seq 8 -reps 1 2>/dev/null | grep -o '"device": *"[^"]*"' | cut -d'"' -f4)
fails=$(printf '%s\n' "${checks[@]}" | grep -c '"status":"fail"')
{
	printf '{"mode":"%s","device":"%s","seconds":%d,"failed":%d,"commit":"%s","checks":[\n' "$mode" "${device:-unknown}" "$total" "$fails" "$(cat "$bin/COMMIT" 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)"
	(IFS=$'\n'; echo "${checks[*]}" | sed '$!s/$/,/')
	printf ']}\n'
} >"$out/report.json"
{
	echo "mtbert GPU check ($mode) on ${device:-unknown}: $fails failed, ${total}s"
	printf '%s\n' "${summary[@]}"
	echo "report: $out/report.json; logs: $logs"
} | tee "$out/summary.txt"
[ "$fails" = 0 ]
