#!/bin/sh
# The NCBI-disease comparison of examples/README.md: mtbert and the PyTorch loop
# (examples/ncbi_torch.py) with three seeds each, then PyTorch with mtbert's
# choices one at a time, and PyTorch on mtbert's own step-0 weights and batches.
#
#   examples/run_ncbi.sh [small|full] [JOB...]     # from the repository root
#
# small (default) is the reduced recipe of ncbi-recipe-small.yaml (2 layers,
# hidden 128, 2 epochs), full the issue's (ncbi-recipe.yaml: 4 layers, hidden
# 256, 3 epochs; about 25 CPU-minutes a run on the machine of the README).
# Each job appends one JSON line to $OUT/results.jsonl (an mtbert job also
# scores its checkpoint with ncbi_torch.py --eval-checkpoint: strict and
# lenient decoding of the same predictions). Jobs: mtbert-SEED,
# torch-SEED, torch-SEED-FLAGS (FLAGS: s = --mtbert-schedule, d =
# --no-decay-bias-ln, p = --zero-pad-row), dump-SEED (PyTorch on mtbert's
# weights and batches of that seed, with all three of mtbert's choices).
set -e
size=${1:-small}
[ $# -gt 0 ] && shift
OUT=${OUT:-/tmp/ncbi-runs}
BIN=${BIN:-$OUT/mtbert}
PY=/usr/bin/python3
mkdir -p "$OUT"
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/mtbert
shared=$(cd ../shared && pwd)
if [ "$size" = full ]; then
	cfg=examples/ncbi-recipe.yaml; arch="--layers 4 --hidden 256 --heads 4 --intermediate 1024 --epochs 3"
else
	cfg=examples/ncbi-recipe-small.yaml; arch="--layers 2 --hidden 128 --heads 2 --intermediate 512 --epochs 2"
fi
seeded() { # the config with seed $1 and absolute data paths
	sed -e "s#\.\./\.\./shared#$shared#" -e "s/^  seed: .*/  seed: $1/" $cfg > "$OUT/$size-seed$1.yaml"
	echo "$OUT/$size-seed$1.yaml"
}
jobs=${*:-"torch-5 mtbert-5 torch-6 mtbert-6 torch-7 mtbert-7"}
for job in $jobs; do
	t0=$(date +%s)
	case $job in
	mtbert-*)
		seed=${job#mtbert-}
		rm -rf "$OUT/$size-$job"
		GOMAXPROCS=1 nice -n 10 "$BIN" train -config "$(seeded $seed)" -out "$OUT/$size-$job" -quiet > "$OUT/$size-$job.log"
		f1=$($PY -c "import json,sys; s=json.load(open(sys.argv[1])); m=s['tasks'][0]['test']['metrics']; print(m['span_f1'])" "$OUT/$size-$job/summary.json")
		secs=$(( $(date +%s) - t0 ))
		# The same checkpoint through ncbi_torch.py's evaluation: both decodings.
		line=$(nice -n 10 $PY examples/ncbi_torch.py --threads 1 $arch --eval-checkpoint "$OUT/$size-$job/last" 2>/dev/null)
		echo "{\"job\": \"$job\", \"size\": \"$size\", \"f1_lenient\": $f1, \"seconds\": $secs, \"torch_eval\": $line}" >> "$OUT/results.jsonl" ;;
	torch-*)
		rest=${job#torch-}; seed=${rest%%-*}; flags=""
		case $rest in *-*) opts=${rest#*-};; *) opts="";; esac
		case $opts in *s*) flags="$flags --mtbert-schedule";; esac
		case $opts in *d*) flags="$flags --no-decay-bias-ln";; esac
		case $opts in *p*) flags="$flags --zero-pad-row";; esac
		line=$(nice -n 10 $PY examples/ncbi_torch.py --threads 1 --seed $seed $arch $flags 2>"$OUT/$size-$job.log")
		echo "{\"job\": \"$job\", \"size\": \"$size\", \"torch\": $line}" >> "$OUT/results.jsonl" ;;
	dump-*)
		seed=${job#dump-}
		rm -rf "$OUT/$size-$job"
		"$BIN" data -config "$(seeded $seed)" -dump "$OUT/$size-$job" -dump-steps 100000 > /dev/null
		line=$(nice -n 10 $PY examples/ncbi_torch.py --threads 1 --seed $seed $arch --mtbert-schedule --no-decay-bias-ln --from-dump "$OUT/$size-$job" 2>"$OUT/$size-$job.log")
		rm -rf "$OUT/$size-$job"
		echo "{\"job\": \"$job\", \"size\": \"$size\", \"torch\": $line}" >> "$OUT/results.jsonl" ;;
	esac
	echo "$job: $(tail -1 "$OUT/results.jsonl")"
done
