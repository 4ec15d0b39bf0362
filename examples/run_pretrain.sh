#!/usr/bin/env bash
# Pretrains the small encoder of examples/public.yaml as a masked language model on the
# training-split text of the six public tasks (examples/pretrain-public.yaml), then trains the
# public.yaml multitask model from it ("pretrained here") and prints it beside the randomly
# initialised multitask run of examples/results. See examples/README.md.
#
# Run from the repository root, with the public data at ../shared/data:
#   examples/run_pretrain.sh              # corpus, pretraining, fine-tuning, table
#   examples/run_pretrain.sh table [DIR]  # only the table (DIR: OUT, or examples/results)
#   examples/run_pretrain.sh save         # copy OUT's summaries to examples/results
# OUT (default /tmp/public-pretrain) receives the corpus (public-train.txt), the pretraining
# run (pretrain/), the fine-tuning run (multitask-pretrained/) and their logs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/public-pretrain}
DATA_ROOT=${DATA_ROOT:-../shared/data}
BIN=${BIN:-$OUT/mtbert}
CHUNK=${CHUNK:-300}

if [[ "${1:-}" == save ]]; then
	mkdir -p examples/results
	cp "$OUT/pretrain/summary.json" examples/results/pretrain.json
	cp "$OUT/pretrain.seconds" examples/results/pretrain.seconds
	cp "$OUT/corpus.txt" examples/results/pretrain-corpus.txt
	cp "$OUT/multitask-pretrained/summary.json" examples/results/multitask-pretrained.json
	cp "$OUT/multitask-pretrained.seconds" examples/results/multitask-pretrained.seconds
	exit 0
fi

# run CMD RUN ARGS...: runs `mtbert CMD` into OUT/RUN in chunks of CHUNK steps, each a fresh
# process continuing the last with -resume (as examples/run_public.sh does); the wall time of
# all chunks goes to OUT/RUN.seconds.
run() {
	local cmd=$1 run=$2 steps=0 resume="" t0 rc
	shift 2
	t0=$(date +%s)
	rm -rf "${OUT:?}/$run"
	: >"$OUT/$run.log"
	until [[ -f "$OUT/$run/summary.json" ]]; do
		steps=$((steps + CHUNK))
		rc=0
		"$BIN" "$cmd" "$@" -out "$OUT/$run" -quiet -max-steps "$steps" $resume >>"$OUT/$run.log" 2>&1 || rc=$?
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
	"$BIN" data -config examples/public.yaml -data-root "$DATA_ROOT" -text-out "$OUT/public-train.txt" | tee "$OUT/corpus.txt"
	echo "$(date -u +%FT%TZ) pretrain" >&2
	run pretrain pretrain -config examples/pretrain-public.yaml -data-root "$OUT"
	# public.yaml with the pretrained encoder in place of the random one.
	awk -v enc="$OUT/pretrain/best" '
		/^encoder:/ { print; print "  pretrained: " enc; skip = 1; next }
		skip && /^[^ #]/ { skip = 0 }
		skip && /^  (vocab|layers|hidden|heads|intermediate|max_position):/ { next }
		{ print }' examples/public.yaml >"$OUT/public-pretrained.yaml"
	echo "$(date -u +%FT%TZ) multitask, pretrained encoder" >&2
	run train multitask-pretrained -config "$OUT/public-pretrained.yaml" -data-root "$DATA_ROOT"
	echo "$(date -u +%FT%TZ) done" >&2
fi

DIR=${2:-$OUT}
python3 - "$DIR" examples/results <<'PY'
import json, os, sys

d, saved = sys.argv[1], sys.argv[2]

def load(run):
    for p in (os.path.join(d, run, "summary.json"), os.path.join(d, run + ".json"), os.path.join(saved, run + ".json")):
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
    return None

def seconds(run):
    for p in (os.path.join(d, run + ".seconds"), os.path.join(saved, run + ".seconds")):
        if os.path.exists(p):
            with open(p) as f:
                return float(f.read())
    return None

def test_metric(s, task):
    for t in (s or {}).get("tasks", []):
        if t["task"] == task and t.get("test"):
            return t["main"], t["test"]["value"]
    return None, None

rand, pre = load("multitask"), load("multitask-pretrained")
cell = lambda v: "-" if v is None else "%.4f" % v
print("| task | test metric | random initialisation | pretrained here | difference |")
print("|---|---|---:|---:|---:|")
for t in (rand or pre or {}).get("tasks", []):
    task = t["task"]
    m, a = test_metric(rand, task)
    _, b = test_metric(pre, task)
    diff = "-" if a is None or b is None else "%+.4f" % (b - a)
    print("| %s | %s | %s | %s | %s |" % (task, m, cell(a), cell(b), diff))
p = load("pretrain")
if p:
    dev = p["tasks"][0].get("dev") or {}
    m = dev.get("metrics", {})
    print()
    print("pretraining: %d steps, %s s; held-out masked-token accuracy %s, perplexity %s" % (
        p["steps"], "%.0f" % seconds("pretrain") if seconds("pretrain") else "?",
        cell(m.get("accuracy")), cell(m.get("perplexity"))))
for r in ("multitask", "multitask-pretrained"):
    s = load(r)
    if s:
        print("%s: %d steps, %s s" % (r, s["steps"], "%.0f" % seconds(r) if seconds(r) else "?"))
PY
