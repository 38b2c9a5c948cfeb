#!/usr/bin/env bash
# The torture test at full size: a writer appends N numbered lines as fast
# as it can while M rotations of mixed styles happen at random moments; the
# tailer must read every line exactly once (also across a restart from its
# checkpoints). Defaults: N = 1,000,000, M = 50. Usage:
#   scripts/torture.sh [LINES] [ROTATIONS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export TORTURE_LINES="${1:-1000000}"
export TORTURE_ROTATIONS="${2:-50}"
export TORTURE_SEED="${3:-1}"
start=$(date +%s)
cargo test --release --locked --test torture -- --nocapture --test-threads 1 2>&1 | grep -oE 'torture (continuous|restart):.*|test result.*|panicked.*|never read.*|read twice.*'
echo "elapsed: $(( $(date +%s) - start )) s (N=$TORTURE_LINES M=$TORTURE_ROTATIONS seed=$TORTURE_SEED)"
