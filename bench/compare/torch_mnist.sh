#!/usr/bin/env bash
# Times the seed workloads of issue 16 (MNIST-shaped VAEs and BNNs, batch 128) in ravi and
# in PyTorch (CPU) in one run, alternating the two for each workload over ROUNDS rounds, on
# 1 core (taskset -c 0) and at 2 threads (taskset -c 0,1), and prints the medians in ms per
# step and the ratio ravi / PyTorch. Makes its own venv with PyTorch from PyPI in
# bench/compare/.venv-torch on first use (a large download: PyPI's Linux wheel brings the
# CUDA libraries too).
#   bench/compare/torch_mnist.sh [WORKLOAD ...]      (ROUNDS=3 STEPS=100 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/compare
venv=$here/.venv-torch
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch numpy
fi
cargo build --release --example bench_step >/dev/null 2>&1
rounds=${ROUNDS:-3}
steps=${STEPS:-100}
workloads=("$@")
if [ ${#workloads[@]} -eq 0 ]; then
    workloads=(mnist_vae_gaussian_b128 mnist_vae_relaxed_bernoulli_b128
               mnist_mlp400_mean_field_b128 mnist_mlp400_mean_field_graph_b128
               mnist_mlp400_flipout_b128 mnist_mlp400_lrt_b128)
fi
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
us() { sed -n 's/.*us_per_step=\([0-9.]*\).*/\1/p'; }
printf '%-36s %7s %12s %12s %7s\n' workload cores "ravi ms" "PyTorch ms" ratio
for cores in 1 2; do
    cpus=$([ "$cores" = 1 ] && echo 0 || echo 0,1)
    for w in "${workloads[@]}"; do
        r=(); t=()
        for _ in $(seq "$rounds"); do
            r+=("$(taskset -c "$cpus" target/release/examples/bench_step "$w" "$steps" | us)")
            t+=("$(taskset -c "$cpus" "$venv/bin/python" "$here/torch_mnist.py" "$w" "$steps" "$cores" | us)")
        done
        rm=$(printf '%s\n' "${r[@]}" | median); tm=$(printf '%s\n' "${t[@]}" | median)
        python3 -c "print(f'{\"$w\":36s} {$cores:7d} {$rm/1e3:12.2f} {$tm/1e3:12.2f} {$rm/$tm:7.2f}')"
    done
done
