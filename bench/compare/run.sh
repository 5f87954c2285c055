#!/usr/bin/env bash
# Times the problems of benches/problems.rs in ravi and in NumPyro (CPU) in one run and
# prints a table of µs per step (NumPyro: the faster of svi.run, differenced over two
# lengths, and a loop over a jitted svi.update) and the ratio ravi / NumPyro. Makes its own Python venv (jax, numpyro
# from PyPI) in bench/compare/.venv on first use.
#   bench/compare/run.sh [PROBLEM ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/compare
if [ ! -x "$here/.venv/bin/python" ]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install --quiet "jax[cpu]" numpyro
fi
cargo build --release --example bench_step >/dev/null 2>&1
problems=("$@")
if [ ${#problems[@]} -eq 0 ]; then
    problems=(blr_diabetes_mean_field_s1 blr_diabetes_mean_field_s8 blr_diabetes_full_rank_s1
              blr_diabetes_full_rank_s8 blr_synthetic_100k_x_100 bnn_digits_64_100_10_b128
              bnn_784_1200_1200_10_b512)
fi
declare -A ravi numpyro run update
for p in "${problems[@]}"; do
    case "$p" in
        *784*) steps=20 ;;
        *100k*) steps=50 ;;
        *) steps=2000 ;;
    esac
    line=$(target/release/examples/bench_step "$p" "$steps")
    ravi[$p]=$(sed -n 's/.*us_per_step=\([0-9.]*\).*/\1/p' <<<"$line")
done
while read -r line; do
    p=${line%% *}
    numpyro[$p]=$(sed -n 's/.*us_per_step=\([0-9.]*\).*/\1/p' <<<"$line")
    run[$p]=$(sed -n 's/.*run=\([-0-9.]*\).*/\1/p' <<<"$line")
    update[$p]=$(sed -n 's/.*update=\([0-9.]*\).*/\1/p' <<<"$line")
done < <(JAX_PLATFORMS=cpu "$here/.venv/bin/python" "$here/numpyro_steps.py" data "${problems[@]}")
printf '%-30s %12s %12s %12s %12s %8s\n' problem "ravi" "NumPyro" "svi.run" "jit update" "ratio"
for p in "${problems[@]}"; do
    r=${ravi[$p]:-nan}; n=${numpyro[$p]:-nan}
    ratio=$(python3 -c "print(f'{float(\"$r\")/float(\"$n\"):.2f}')" 2>/dev/null || echo nan)
    printf '%-30s %12s %12s %12s %12s %8s\n' "$p" "$r" "$n" "${run[$p]:-}" "${update[$p]:-}" "$ratio"
done
