#!/bin/bash
# Data parallel against threads on one machine: the fixture's tasks (mtl/testdata/train) on
# an encoder of the given size, trained for STEPS steps (global batch 32 per task), as
# 1 process x 2 threads (GOMAXPROCS=2, -distributed none) and as mpirun -np 2 x 1 thread,
# alternated REPS times. Prints, per run, tokens/s (tokens of the steps over their time,
# from metrics.jsonl) and the allreduce share of the step time (comm_seconds).
#
#   examples/scale/dp-bench.sh small   # 4 layers, hidden 256
#   examples/scale/dp-bench.sh base    # BERT-base sizes: 12 layers, hidden 768
set -euo pipefail
cd "$(dirname "$0")/../.."
size=${1:-small}; STEPS=${STEPS:-30}; REPS=${REPS:-3}
case $size in
small) enc="layers: 4\n  hidden: 256\n  heads: 4\n  intermediate: 1024" ;;
base) enc="layers: 12\n  hidden: 768\n  heads: 12\n  intermediate: 3072" ;;
esac
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT; [ -n "${KEEP:-}" ] && echo "$d"
CGO_ENABLED=0 go build -o "$d/mtbert" ./cmd/mtbert
root=$PWD/mtl/testdata/train
sed -e "s|vocab: vocab.txt|vocab: $root/vocab.txt|" -e "s|  layers: 1\n||" mtl/testdata/train/config.yaml |
	awk -v enc="$enc" '/^  layers:|^  hidden:|^  heads:|^  intermediate:/ {if (!done) {gsub(/\\n/, "\n", enc); print "  " enc; done=1}; next} {print}' |
	sed -e "s/batch_size: 8/batch_size: 32/" -e '/^training:/,$d' > "$d/c.yaml"
printf 'training:\n  steps: %s\n  eval_every: 100000\n  lr: 1e-4\n  seed: 3\n  dropout: 0.1\n' "$STEPS" >> "$d/c.yaml"
stats() { # tokens/s and allreduce share over the steps after the first three (warm-up)
	python3 -c '
import json,sys
L=[json.loads(l) for l in open(sys.argv[1]) if "loss" in l][3:]
tok=sum(l["tokens"] for l in L); s=sum(l["seconds"] for l in L); c=sum(l.get("comm_seconds",0) for l in L)
print(f"{tok/s:9.0f} tokens/s  allreduce {100*c/s:4.1f}% of the step")' "$1"
}
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_btl=self,vader OMPI_MCA_mpi_yield_when_idle=1
for r in $(seq "$REPS"); do
	GOMAXPROCS=2 "$d/mtbert" train -config "$d/c.yaml" -data-root "$root" -out "$d/a$r" -quiet -distributed none >/dev/null
	echo "$size rep $r  1 process x 2 threads: $(stats "$d/a$r/metrics.jsonl")"
	mpirun --oversubscribe --allow-run-as-root --bind-to none -np 2 -x GOMAXPROCS=1 "$d/mtbert" train -config "$d/c.yaml" -data-root "$root" -out "$d/b$r" -quiet >/dev/null 2>&1
	echo "$size rep $r  2 ranks   x 1 thread:  $(stats "$d/b$r/metrics.jsonl")"
done
"$d/mtbert" train -h 2>&1 | head -0
python3 -c 'import sys' # params of the encoder for the paper estimate:
grep -c . "$root/vocab.txt" | sed 's/^/vocab size: /'
