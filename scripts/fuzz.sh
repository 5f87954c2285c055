#!/usr/bin/env bash
# Runs the compiler's fuzzer (compiler/tests/fuzz.rs) for N inputs, in release mode with
# overflow checks and debug assertions on (an integer overflow panics, as in a debug build),
# and prints the inputs per second, the panics and other failures, and the slowest inputs.
# A failing input is saved under target/fuzz/tmp/fuzz-failures/ and replays with
# RAVI_FUZZ_SEED=SEED RAVI_FUZZ_ONLY=index.
#
#   scripts/fuzz.sh 1000000          # the default seed
#   scripts/fuzz.sh 100000 0x1234    # another seed
#
# To refresh the corpus after adding examples or tests: python3 scripts/fuzz_corpus.py
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: scripts/fuzz.sh N [SEED]}
export RAVI_FUZZ_INPUTS="$n"
if [ $# -ge 2 ]; then export RAVI_FUZZ_SEED="$2"; fi
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/fuzz}"
exec cargo test --release -p ravi-compiler --test fuzz -- --nocapture --test-threads 1
