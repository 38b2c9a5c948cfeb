#!/usr/bin/env bash
# Install OpenSMTPD 6.8 + swaks + rsyslog, configure a loopback-only test bed
# (private smtpd.conf and tables, a private rsyslogd: OpenSMTPD logs only
# through syslog), drive every scenario in drive.py against tests/mta/sink.py,
# capture the syslog file, stop everything and restore the machine.
#
#   bash tests/mta/opensmtpd/run.sh [--no-install] [--out DIR] [--keep-work] [--e2e]
#                                   [--exporter BIN [--results-dir DIR]]
#
# Outputs (default --out = tests/fixtures/opensmtpd): scenarios.log (RFC 3164,
# from rsyslogd), scenarios.expected.json, scenarios.sink.jsonl.
#
# --exporter BIN: start BIN following the fresh syslog file from its beginning
# before rsyslogd starts, and after the driver assert its /metrics against
# this run's expected.json (tests/mta/e2e_check.py); DIR/opensmtpd-syslog.json
# gets a summary for e2e.sh's table. The exit status says whether all passed.
#
# smtpd runs in the foreground (-F, still logging to syslog) so that it is
# stopped by its own pid. The driver restarts it between the scenarios whose
# route fails at the greeting or EHLO (OpenSMTPD retries those every few
# seconds for as long as it runs, see tests/mta/README.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mta=$(cd "$here/.." && pwd)
repo=$(cd "$mta/../.." && pwd)
MTA_LOG_TAG=opensmtpd
# shellcheck source=../lib.sh
. "$mta/lib.sh"

install=1
out="$repo/tests/fixtures/opensmtpd"
keep_work=0
exporter=
results_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) install=0; shift ;;
    --out) out=$(realpath -m "$2"); shift 2 ;;
    --keep-work) keep_work=1; shift ;;
    --e2e) shift ;;  # the one capture is also the end-to-end selection
    --exporter) exporter=$(realpath "$2"); shift 2 ;;
    --results-dir) results_dir=$(realpath -m "$2"); shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh must run as root (it installs and starts OpenSMTPD)" >&2; exit 2; }
cd /

SINK_PORT=2525
CLOSED_PORT=$((SINK_PORT + 8))
MX_PORT=10025
SUBMISSION_PORT=10587
EXPIRE_TTL=6
# Own addresses for the routes that fail (see conf/smtpd.conf.in).
GREET554_IP=127.0.0.11
GREET421_IP=127.0.0.12
HELO550_IP=127.0.0.14
CLOSED_IP=127.0.0.18

WORK=/var/tmp/mta-opensmtpd
SPOOL=/var/spool/smtpd
PY=${PYTHON:-python3}
spool_existed=0
[ -e "$SPOOL" ] && spool_existed=1

install_packages() {
  purge_other_mtas opensmtpd
  apt_install opensmtpd swaks python3 rsyslog
}

render() {  # render SRC DST
  sed -e "s|@WORK@|$WORK|g" -e "s|@MX_PORT@|$MX_PORT|g" -e "s|@SUBMISSION_PORT@|$SUBMISSION_PORT|g" \
      -e "s|@EXPIRE_TTL@|${EXPIRE_TTL}s|g" -e "s|@GREET554_IP@|$GREET554_IP|g" \
      -e "s|@GREET421_IP@|$GREET421_IP|g" -e "s|@HELO550_IP@|$HELO550_IP|g" -e "s|@CLOSED_IP@|$CLOSED_IP|g" \
      -e "s|@SINK_PORT@|$SINK_PORT|g" -e "s|@SINK_GREET554@|$((SINK_PORT + 1))|g" \
      -e "s|@SINK_GREET421@|$((SINK_PORT + 2))|g" -e "s|@SINK_AUTH535@|$((SINK_PORT + 3))|g" \
      -e "s|@SINK_HELO550@|$((SINK_PORT + 4))|g" -e "s|@SINK_FILTER@|$((SINK_PORT + 5))|g" \
      -e "s|@SINK_ACCEPT@|$((SINK_PORT + 6))|g" -e "s|@CLOSED_PORT@|$CLOSED_PORT|g" "$1" > "$2"
}

prepare_work() {
  rm -rf "$WORK"
  mkdir -p "$WORK/maildir"
  chmod 755 "$WORK"
  chown nobody "$WORK/maildir"
  local f
  for f in "$here"/conf/*; do
    case "$(basename "$f")" in
      smtpd.conf.in) render "$f" "$WORK/smtpd.conf" ;;
      *) cp "$f" "$WORK/" ;;
    esac
  done
  smtpd -n -f "$WORK/smtpd.conf" >/dev/null
}

SINK_PID=
start_sink() {
  "$PY" "$mta/sink.py" --port "$SINK_PORT" --host 127.0.0.1 --host ::1 \
      --host "$GREET554_IP" --host "$GREET421_IP" --host "$HELO550_IP" \
      --journal "$WORK/sink.jsonl" > "$WORK/sink.out" 2>&1 &
  SINK_PID=$!
  wait_tcp "$SINK_PORT"
}

stop_sink() {
  [ -n "$SINK_PID" ] || return 0
  kill "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=
}

stop_smtpd_leftover() {  # an smtpd the driver started and did not stop (driver failure)
  [ -s "$WORK/smtpd.pid" ] || return 0
  local pid i
  pid=$(cat "$WORK/smtpd.pid")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$WORK/smtpd.pid"
}

cleanup() {
  set +e
  stop_smtpd_leftover
  stop_sink
  stop_exporter
  stop_private_rsyslogd "$WORK"
  [ "$spool_existed" = 1 ] || rm -rf "$SPOOL"
  [ "$keep_work" = 1 ] || rm -rf "$WORK"
  pkg_snapshot_restore
}
trap cleanup EXIT
failed=0

pkg_snapshot_begin
[ "$install" = 1 ] && install_packages
prepare_work
rm -rf "${SPOOL:?}"/*  # an empty queue: nothing from an earlier run is retried
logfile=$WORK/syslog.log
[ -n "$exporter" ] && start_exporter "$exporter" "$logfile" "$WORK/exporter.out"
start_private_rsyslogd "$WORK" "$logfile"
start_sink
log "driving the scenarios (drive.py starts and stops smtpd -F -f $WORK/smtpd.conf)"
"$PY" "$here/drive.py" --log "$logfile" --journal "$WORK/sink.jsonl" --expected "$WORK/expected.json" \
    --conf "$WORK/smtpd.conf" --pidfile "$WORK/smtpd.pid" --mx-port "$MX_PORT" \
    --submission-port "$SUBMISSION_PORT" --expire-ttl "$EXPIRE_TTL" --spool "$SPOOL" || {
  failed=1
  log "drive.py FAILED"
  if [ -n "$results_dir" ]; then echo "drive.py failed" >> "$results_dir/opensmtpd.capture-failed"; fi
}
if [ -n "$exporter" ]; then
  log "e2e: asserting the exporter's /metrics against this run's expected.json"
  "$PY" "$mta/e2e_check.py" --mta opensmtpd --name "opensmtpd (syslog)" --log "$logfile" \
      --exporter-log "$WORK/exporter.out" --expected "$WORK/expected.json" \
      ${results_dir:+--result "$results_dir/opensmtpd-syslog.json"} || failed=1
  stop_exporter
fi
cp "$logfile" "$WORK/capture.log"
stop_smtpd_leftover
stop_sink
mkdir -p "$out"
cp "$WORK/capture.log" "$out/scenarios.log"
cp "$WORK/expected.json" "$out/scenarios.expected.json"
cp "$WORK/sink.jsonl" "$out/scenarios.sink.jsonl"
chmod 644 "$out"/scenarios.*
log "wrote $out/scenarios.log ($(wc -l < "$out/scenarios.log") lines) and scenarios.expected.json"
if [ "$failed" = 1 ]; then log "done: FAILED"; exit 1; fi
log "done"
