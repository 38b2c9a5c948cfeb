#!/usr/bin/env bash
# Throughput of `mta_exporter report` against the exporter itself on the
# same generated log (../shared/bench/genlog.py), lines per second.
#   scripts/bench-report.sh [LINES]        (default 2000000)
# Builds the release binary first. Wall-clock figures depend on the load of
# the machine; the CPU-time figures (user+sys) are the ones to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-2000000}
shared=${MTA_SHARED_DIR:-../shared}
work=$(mktemp -d)
exporter_pid=
cleanup() {
  [[ -n $exporter_pid ]] && kill "$exporter_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet
bin=target/release/mta_exporter
python3 "$shared/bench/genlog.py" --lines "$lines" --seed 42 --format postfix -o "$work/mail.log"
echo "log: $lines lines, $(du -m "$work/mail.log" | cut -f1) MB"

ticks=$(getconf CLK_TCK)
cpu_seconds() { # user+sys of a pid, from /proc
  awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"
}

# report: one pass, summary discarded.
TIMEFORMAT='%R %U %S'
times=$( { time $bin report --output json "$work/mail.log" >/dev/null; } 2>&1 )
read -r report_wall report_user report_sys <<<"$times"
report_cpu=$(echo "$report_user + $report_sys" | bc)

# exporter: read the same file from its beginning, poll until every line is counted.
port=$((20000 + RANDOM % 20000))
start=$(date +%s.%N)
$bin --log.path "$work/mail.log" --log.from-beginning --web.listen-address "127.0.0.1:$port" --log.level error &
exporter_pid=$!
while true; do
  read_lines=$(curl -fs "127.0.0.1:$port/metrics" 2>/dev/null | awk '/^mta_log_lines_total/ { s += $2 } END { printf "%d", s }' || true)
  [[ ${read_lines:-0} -ge $lines ]] && break
  sleep 0.05
done
end=$(date +%s.%N)
exporter_cpu=$(cpu_seconds "$exporter_pid")
exporter_wall=$(echo "$end - $start" | bc)

rate() { echo "$lines / $1" | bc; }
printf '%-10s %8s s wall %10s lines/s   %8s s cpu %10s lines/s\n' \
  report "$report_wall" "$(rate "$report_wall")" "$report_cpu" "$(rate "$report_cpu")" \
  exporter "$exporter_wall" "$(rate "$exporter_wall")" "$exporter_cpu" "$(rate "$exporter_cpu")"
