#!/usr/bin/env bash
# Builds libmtcuda_emu.so and the self-tests into OUT_DIR (default /tmp/mtcuda_selftest) and runs
# them on the emulator: build_and_run.sh [OUT_DIR] [group|bench].
# On a machine with an NVIDIA GPU: build_and_run.sh --real [OUT_DIR] [group|bench] runs the same
# checks on libcuda.so.1 (managed memory; bench prints GEMM/attention timings from CUDA events).
# NOBUILD=1 reuses the built files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
real=0
if [ "${1:-}" = "--real" ]; then real=1; shift; fi
out="${1:-/tmp/mtcuda_selftest}"
if [ -z "${NOBUILD:-}" ]; then
  [ $real = 1 ] || "$here/../build.sh" "$out"
  mkdir -p "$out"
  cxx="${CXX:-$(command -v clang++-19 || command -v g++)}"
  "$cxx" -std=c++17 -O1 -w -o "$out/selftest" "$here"/main.cc -ldl
fi
if [ $real = 1 ]; then export MTCUDA_LIB=libcuda.so.1; else export MTCUDA_LIB="$out/libmtcuda_emu.so"; fi
cd "$here/../.." && "$out/selftest" "${@:2}"
