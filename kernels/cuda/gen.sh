#!/usr/bin/env bash
# Regenerates kernels/cuda/ptx/<name>.ptx from every kernels/cuda/src/<name>.cu with clang-19
# (no CUDA toolkit needed). `gen.sh -check` regenerates into a temporary directory and exits
# non-zero when the committed PTX differs from what the sources give (CI).
# Env CLANG overrides the compiler (default clang-19).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
clang="${CLANG:-clang-19}"
command -v "$clang" >/dev/null 2>&1 || { echo "gen.sh: $clang not found (apt-get install clang-19)" >&2; exit 2; }
check=0
[ "${1:-}" = "-check" ] && check=1
out="$here/ptx"
if [ $check = 1 ]; then out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"
for f in "$here"/src/*.cu; do
  name="$(basename "$f" .cu)"
  # cd to src so that no absolute path can leak into the output
  (cd "$here/src" && "$clang" -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 \
     --cuda-feature=+ptx80 -O3 -S -o "$out/$name.ptx.tmp" "$name.cu")
  mv "$out/$name.ptx.tmp" "$out/$name.ptx"
done
if [ $check = 1 ]; then
  status=0
  for f in "$out"/*.ptx; do
    name="$(basename "$f")"
    if ! cmp -s "$f" "$here/ptx/$name"; then echo "gen.sh -check: ptx/$name is stale (run go generate ./kernels/cuda)" >&2; status=1; fi
  done
  for f in "$here"/ptx/*.ptx; do
    [ -e "$f" ] || continue
    name="$(basename "$f")"
    [ -e "$out/$name" ] || { echo "gen.sh -check: ptx/$name has no source" >&2; status=1; }
  done
  [ $status = 0 ] && echo "gen.sh -check: PTX up to date" >&2
  exit $status
fi
