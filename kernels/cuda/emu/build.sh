#!/usr/bin/env bash
# Builds the host emulation of the CUDA driver: OUT_DIR/libmtcuda_emu.so from emu/*.cc and
# every src/*.cu compiled as C++ with the SIMT shim (emu/simt.h, pulled in by src/mt_common.cuh).
# Usage: kernels/cuda/emu/build.sh OUT_DIR      (env CXX overrides the compiler choice)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"
mkdir -p "$out"
cxx="${CXX:-}"
if [ -z "$cxx" ]; then
  for c in clang++-19 clang++ g++; do
    if command -v "$c" >/dev/null 2>&1; then cxx="$c"; break; fi
  done
fi
[ -n "$cxx" ] || { echo "build.sh: no C++ compiler (clang++-19, clang++ or g++) found" >&2; exit 1; }
echo "build.sh: compiling libmtcuda_emu.so with $cxx" >&2
srcs=("$here"/*.cc)
cus=("$here"/../src/*.cu)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
objs=()
flags=(-std=c++17 -O3 -fPIC -fvisibility=hidden -pthread -Wall -Wno-unused-function -Wno-unknown-pragmas -ffp-contract=off)
for f in "${srcs[@]}"; do
  o="$tmp/$(basename "$f").o"; "$cxx" "${flags[@]}" -c "$f" -o "$o"; objs+=("$o")
done
for f in "${cus[@]}"; do
  o="$tmp/$(basename "$f").o"; "$cxx" "${flags[@]}" -x c++ -c "$f" -o "$o"; objs+=("$o")
done
"$cxx" -shared -pthread -o "$out/libmtcuda_emu.so.tmp" "${objs[@]}"
mv "$out/libmtcuda_emu.so.tmp" "$out/libmtcuda_emu.so"
echo "build.sh: wrote $out/libmtcuda_emu.so" >&2
