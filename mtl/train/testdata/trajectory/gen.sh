#!/bin/sh
# Regenerates the goldens of trajectory_test.go: mtbert dumps the first 50
# steps of config.yaml (step-0 weights, batches, rates), and PyTorch replays
# them, once correctly and once with each mistake the test must catch.
# Run from the repository root; needs Debian's python3-torch (/usr/bin/python3).
set -e
here=mtl/train/testdata/trajectory
dump=$(mktemp -d)/dump
go run ./cmd/mtbert data -config $here/config.yaml -dump "$dump" -dump-steps 50
for v in correct shift decay-all clip-after; do
	/usr/bin/python3 $here/replay.py "$dump" $here/golden-$v.safetensors --variant $v
done
rm -r "$(dirname "$dump")"
