#!/usr/bin/env bash
# Builds the examples and the CUDA test binaries for a GPU machine (driver ≥ 580, CUDA 13)
# from a machine with no GPU and no CUDA install: a CUDA 13.0 toolkit is assembled from
# PyPI wheels (scripts/gpu/cuda-toolkit.sh, once, ~1 GiB in $CUDA_TOOLKIT_DIR), then
# everything is built with `--features cuda` and packed into .gpu/ with its run script.
# On the GPU machine, from the repository root:
#     bash .gpu/gpu-run.sh .gpu/linear_regression --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
toolkit=${CUDA_TOOLKIT_DIR:-/tmp/cuda13}
[ -f "$toolkit/env.sh" ] || scripts/gpu/cuda-toolkit.sh "$toolkit"
# shellcheck disable=SC1091
source "$toolkit/env.sh"
cargo build --release --features cuda --examples
tests=$(cargo test --release --features cuda --no-run 2>&1 | sed -n 's/.*Executable .*(\(target\/release\/deps\/[^)]*\)).*/\1/p')
examples=$(find target/release/examples -maxdepth 1 -type f -executable ! -name '*-*')
grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
scripts/gpu/pack.sh .gpu $examples $tests
echo "packed into .gpu/: $(ls .gpu | tr '\n' ' ')"
