#!/usr/bin/env bash
# End-to-end suite: real MTAs from Debian's packages on loopback, driven with
# swaks against tests/mta/sink.py, followed live by the release mta_exporter,
# whose /metrics must equal what the driver and the sink know was sent.
#
#   sudo tests/mta/e2e.sh [postfix|exim|sendmail|opensmtpd|all ...]   (default: all)
#
# For each MTA, one after the other (their packages conflict), it runs
# tests/mta/<mta>/run.sh --exporter BIN, which installs and configures the
# MTA, starts the sink and the exporter (following the fresh log from its
# beginning), drives every scenario, waits until the log is quiet and the
# exporter has read all of it (mta_log_bytes_total == file size), and asserts
# exactly: mta_smtp_replies_total per (mta, direction, phase, code, enhanced),
# mta_deliveries_total per status, mta_smtp_reject_warnings_total, and no
# unrecognized line (tests/mta/e2e_check.py). Then it prints a PASS/FAIL table.
#
# It must run as root. It installs what it needs with apt-get
# (DEBIAN_FRONTEND=noninteractive) and, at the end, purges exactly the
# packages that were not installed when it started. A conflicting MTA that was
# installed before is purged only with MTA_ALLOW_PURGE=1.
#
# Environment:
#   MTA_EXPORTER_BIN   use this binary instead of building target/release/mta_exporter
#   MTA_E2E_KEEP=1     keep the work directory (captured logs, exporter logs) even on success
#   MTA_ALLOW_PURGE=1  allow purging an MTA that was installed before the run
#   MTA_LOCK=FILE      take this lock (flock) for the whole run: on a machine
#                      where other runs install MTAs too, they take turns
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
MTA_LOG_TAG=e2e
# shellcheck source=lib.sh
. "$here/lib.sh"

ALL_MTAS=(postfix exim sendmail opensmtpd)
want=()
for arg in "$@"; do
  case "$arg" in
    all) want+=("${ALL_MTAS[@]}") ;;
    postfix|exim|sendmail|opensmtpd) want+=("$arg") ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown MTA: $arg (one of: ${ALL_MTAS[*]} all)" >&2; exit 2 ;;
  esac
done
[ ${#want[@]} -eq 0 ] && want=("${ALL_MTAS[@]}")
[ "$(id -u)" = 0 ] || { echo "e2e.sh must run as root (it installs and starts MTAs): sudo $0 $*" >&2; exit 2; }

for m in "${want[@]}"; do
  [ -x "$here/$m/run.sh" ] || [ -f "$here/$m/run.sh" ] || die "no driver for $m ($here/$m/run.sh)"
done

if [ -n "${MTA_LOCK:-}" ]; then
  exec 9>>"$MTA_LOCK"
  log "waiting for the MTA lock $MTA_LOCK"
  flock 9
fi

suite_start=$SECONDS
if [ -n "${MTA_EXPORTER_BIN:-}" ]; then
  bin=$(realpath "$MTA_EXPORTER_BIN")
  log "using MTA_EXPORTER_BIN=$bin"
else
  command -v cargo >/dev/null 2>&1 || die "cargo not found (under sudo, PATH may lack ~/.cargo/bin): build with 'cargo build --release' and pass MTA_EXPORTER_BIN=target/release/mta_exporter"
  log "cargo build --release --locked --bin mta_exporter"
  (cd "$repo" && cargo build --release --locked --bin mta_exporter --quiet)
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/mta_exporter
  [ "${bin#/}" = "$bin" ] && bin=$repo/$bin
fi
[ -x "$bin" ] || die "exporter binary not found: $bin"
build_seconds=$((SECONDS - suite_start))

WORK=$(mktemp -d /var/tmp/mta-e2e.XXXXXX)
chmod 755 "$WORK"
results=$WORK/results
mkdir -p "$results"
pkg_snapshot_begin
apt_update_once  # once for all MTAs (exported to the run.sh scripts)
finish() {
  set +e
  pkg_snapshot_restore
  if [ "${MTA_E2E_KEEP:-0}" = 1 ] || [ "${overall:-1}" != 0 ]; then
    log "work directory kept: $WORK (captured logs, expected.json, exporter and driver output)"
  else
    rm -rf "$WORK"
  fi
}
trap finish EXIT

declare -A rc_of secs_of
for m in "${want[@]}"; do
  log "===== $m: install, configure, start, drive, assert (tests/mta/$m/run.sh)"
  start=$SECONDS
  rc=0
  MTA_PKG_SNAPSHOT=$MTA_PKG_SNAPSHOT bash "$here/$m/run.sh" --e2e --exporter "$bin" \
      --out "$WORK/$m" --results-dir "$results" 2>&1 | tee "$WORK/$m.out" || rc=$?
  # The sessions capture and real-queue check, where the MTA has one
  # (tests/mta/<mta>/sessions.sh): TLS, SASL, postscreen, notifications …,
  # and the exporter's queue families against the MTA's own queue listing.
  if [ -f "$here/$m/sessions.sh" ]; then
    log "===== $m: sessions and queue (tests/mta/$m/sessions.sh)"
    MTA_PKG_SNAPSHOT=$MTA_PKG_SNAPSHOT bash "$here/$m/sessions.sh" --exporter "$bin" \
        --out "$WORK/$m-sessions" --results-dir "$results" 2>&1 | tee "$WORK/$m-sessions.out" || rc=$?
  fi
  rc_of[$m]=$rc
  secs_of[$m]=$((SECONDS - start))
  log "===== $m: exit status $rc after ${secs_of[$m]} s"
done

# The table: one row per exporter run (an MTA may have several variants).
overall=0
echo
printf '%-34s %-6s %8s %8s  %s\n' "run" "result" "replies" "seconds" "failed checks"
for m in "${want[@]}"; do
  shopt -s nullglob
  files=("$results/$m"-*.json)
  shopt -u nullglob
  if [ ${#files[@]} -eq 0 ]; then
    printf '%-34s %-6s %8s %8s  %s\n' "$m" "FAIL" "-" "${secs_of[$m]}" "no result: run.sh exited with status ${rc_of[$m]} before the assertions (see $WORK/$m.out)"
    overall=1
    continue
  fi
  mta_failed=0
  for f in "${files[@]}"; do
    python3 - "$f" "${secs_of[$m]}" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
failed = [c["check"] for c in r["checks"] if not c["pass"]]
print("%-34s %-6s %8s %8s  %s" % (r["name"], "PASS" if r["pass"] else "FAIL", r.get("replies", "-"),
                                   sys.argv[2], "; ".join(failed)))
EOF
    python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["pass"] else 1)' "$f" || { overall=1; mta_failed=1; }
  done
  if [ -e "$results/$m.capture-failed" ]; then
    printf '%-34s %-6s %8s %8s  %s\n' "$m (capture)" "FAIL" "-" "${secs_of[$m]}" "$(tr '\n' ' ' < "$results/$m.capture-failed")(see $WORK/$m.out)"
    overall=1
  elif [ "${rc_of[$m]}" != 0 ] && [ "$mta_failed" = 0 ]; then
    printf '%-34s %-6s %8s %8s  %s\n' "$m (run.sh)" "FAIL" "-" "${secs_of[$m]}" "exit status ${rc_of[$m]} (see $WORK/$m.out)"
    overall=1
  fi
done
echo "(the differences are printed above, under each run's 'e2e_check' lines)"
log "release build ${build_seconds} s; whole suite $((SECONDS - suite_start)) s"
exit $overall
