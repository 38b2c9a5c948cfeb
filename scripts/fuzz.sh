#!/usr/bin/env bash
# Builds every fuzz target in fuzz/ and runs each for a while on a corpus
# seeded from the project's own fixtures (fuzz/seed.sh).
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECONDS (10) each
#   FUZZ_SECONDS=300 scripts/fuzz.sh parse_exim decode
#
# One target runs at a time (the machines have 2 cores). A crash stops the
# script with the input saved under fuzz/artifacts/<target>/; reproduce it
# with `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/crash-…`.
# Needs the nightly toolchain and cargo-fuzz (scripts/test.sh installs
# cargo-fuzz when it is missing).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-10}
# FUZZ_SANITIZER=none builds faster (the code is safe Rust; address
# sanitizing matters only for the unsafe code in dependencies).
SANITIZER=${FUZZ_SANITIZER:-address}
# FUZZ_BUILD=--dev: an unoptimized build, much quicker to make (CI's smoke run).
BUILD=${FUZZ_BUILD:--O}
mapfile -t ALL < <(cargo +nightly fuzz list)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
./seed.sh >/dev/null
cargo +nightly fuzz build "$BUILD" -s "$SANITIZER"
for target in "${TARGETS[@]}"; do
  mkdir -p "artifacts/$target"
  # -max_len: room for long lines, so the quadratic corners get found too.
  # -timeout: an input that takes more than 10 s is a hang and fails the run.
  out=$(cargo +nightly fuzz run "$BUILD" -s "$SANITIZER" "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 2>&1) || {
    printf '%s\n' "$out" | tail -40
    echo "fuzz target $target FAILED; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  }
  runs=$(printf '%s\n' "$out" | sed -n 's/^stat::number_of_executed_units: *//p')
  cov=$(printf '%s\n' "$out" | grep -o 'cov: [0-9]*' | tail -1)
  echo "fuzz $target: ${SECONDS_EACH}s, ${runs:-?} runs, ${cov:-cov: ?}, no crash"
done
