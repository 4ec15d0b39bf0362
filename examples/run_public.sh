#!/usr/bin/env bash
# Trains the examples/public.yaml experiment: one multitask model over the six
# public tasks, then each task alone (`-task NAME`, same config, same seeds), then
# Quaero and BIOSSES alone for the multitask run's number of steps
# (examples/public-*-matched.yaml), and prints the results tables from the
# summary.json files. See examples/README.md.
#
# Run from the repository root, with the public data at ../shared/data:
#   examples/run_public.sh                       # train all nine runs, then print the tables
#   examples/run_public.sh table                 # only print the table of OUT's finished runs
#   examples/run_public.sh table examples/results  # the table of the saved summaries
#   examples/run_public.sh save                  # copy OUT's summaries to examples/results
# OUT (default /tmp/public-runs) receives one folder per run (RUN/summary.json,
# RUN/metrics.jsonl, checkpoints) and the logs (OUT/RUN.log). Needs go and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/public-runs}
CONFIG=examples/public.yaml
DATA_ROOT=${DATA_ROOT:-../shared/data}
TASKS="medrqe quaero ncbi-disease bc5cdr meddocan biosses"
BIN=${BIN:-$OUT/mtbert}
CHUNK=${CHUNK:-300}

MATCHED="quaero biosses"
RUNS="multitask $(for t in $TASKS; do printf 'single-%s ' "$t"; done)$(for t in $MATCHED; do printf 'matched-%s ' "$t"; done)"

if [[ "${1:-}" == save ]]; then
	mkdir -p examples/results
	for r in $RUNS; do
		cp "$OUT/$r/summary.json" "examples/results/$r.json"
		cp "$OUT/$r.seconds" "examples/results/$r.seconds"
	done
	exit 0
fi

# train RUN ARGS...: trains into OUT/RUN in chunks of CHUNK steps, each a fresh process that
# continues the last with -resume (bit-identical to one uninterrupted run). Chunks bound a
# run's memory whatever the build (an earlier tensor.Pool that did not bound its retained
# buffers took a multitask run past 24 GB in about 20 minutes) and leave a resumable
# checkpoint every CHUNK steps. The wall time of all chunks goes to OUT/RUN.seconds.
train() {
	local run=$1 steps=0 resume="" t0 rc
	shift
	t0=$(date +%s)
	rm -rf "${OUT:?}/$run"
	: >"$OUT/$run.log"
	until [[ -f "$OUT/$run/summary.json" ]]; do
		steps=$((steps + CHUNK))
		rc=0
		"$BIN" train "$@" -data-root "$DATA_ROOT" -out "$OUT/$run" -quiet -max-steps "$steps" $resume >>"$OUT/$run.log" 2>&1 || rc=$?
		if [[ $rc -ne 0 ]] && ! tail -n 1 "$OUT/$run.log" | grep -q "interrupted (max steps)"; then
			echo "$run failed (exit $rc), see $OUT/$run.log" >&2
			exit 1
		fi
		resume=-resume
	done
	echo $(($(date +%s) - t0)) >"$OUT/$run.seconds"
}

if [[ "${1:-}" != table ]]; then
	mkdir -p "$OUT"
	go build -o "$BIN" ./cmd/mtbert
	"$BIN" data -config "$CONFIG" -data-root "$DATA_ROOT" >"$OUT/data.txt"
	echo "$(date -u +%FT%TZ) multitask" >&2
	train multitask -config "$CONFIG"
	for t in $TASKS; do
		echo "$(date -u +%FT%TZ) single $t" >&2
		train "single-$t" -config "$CONFIG" -task "$t"
	done
	# Quaero and BIOSSES have 10 and 2 batches an epoch, so `-task` with 1 epoch trains
	# them for 10 and 2 steps; these two runs give them about the multitask run's 218.
	for t in $MATCHED; do
		echo "$(date -u +%FT%TZ) single $t, matched steps" >&2
		train "matched-$t" -config "examples/public-$t-matched.yaml"
	done
	echo "$(date -u +%FT%TZ) done" >&2
fi

# The table: each task's main test metric (span micro-F1 for ner, accuracy for
# MedRQE, Pearson for BIOSSES), multitask versus single-task, and the wall time
# of every run. Summaries are DIR/RUN/summary.json, or DIR/RUN.json (saved).
DIR=${2:-$OUT}
python3 - "$DIR" $RUNS <<'PY'
import json, os, sys

d, runs = sys.argv[1], sys.argv[2:]

def load(run):
    for p in (os.path.join(d, run, "summary.json"), os.path.join(d, run + ".json")):
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
    return None

mt = load("multitask")
def test_metric(s, task):
    for t in (s or {}).get("tasks", []):
        if t["task"] == task and t.get("test"):
            return t["main"], t["test"]["value"]
    return None, None

tasks = [r[len("single-"):] for r in runs if r.startswith("single-")]
cell = lambda v: "-" if v is None else "%.4f" % v
print("| task | test metric | multitask | single-task | difference | single-task, matched steps |")
print("|---|---|---:|---:|---:|---:|")
for task in tasks:
    m, a = test_metric(mt, task)
    m2, b = test_metric(load("single-" + task), task)
    _, c = test_metric(load("matched-" + task), task)
    diff = "-" if a is None or b is None else "%+.4f" % (a - b)
    print("| %s | %s | %s | %s | %s | %s |" % (task, m or m2 or "-", cell(a), cell(b), diff, cell(c) if "matched-" + task in runs else "n/a"))
print()
print("| run | steps | checkpoint measured (step, dev metric) | wall time |")
print("|---|---:|---|---:|")
total = main = 0.0
for run in runs:
    s = load(run)
    if s is None:
        print("| %s | - | not finished | - |" % run)
        continue
    sec = s["seconds"]  # the last invocation only; RUN.seconds covers every chunk
    if os.path.exists(os.path.join(d, run + ".seconds")):
        with open(os.path.join(d, run + ".seconds")) as f:
            sec = float(f.read())
    total += sec
    if not run.startswith("matched-"):
        main += sec
    b = s.get("best")
    best = "step %d, %s %.4f" % (b["step"], b["metric"], b["value"]) if b else "none (final model)"
    print("| %s | %d | %s | %.0f s (%.1f min) |" % (run, s["steps"], best, sec, sec / 60))
print("| multitask + six single-task runs | | | %.0f s (%.1f min) |" % (main, main / 60))
print("| all runs | | | %.0f s (%.1f min) |" % (total, total / 60))
PY
