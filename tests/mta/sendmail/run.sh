#!/usr/bin/env bash
# Install Sendmail 8.17 (sendmail-bin, sendmail-cf, m4) + swaks + rsyslog,
# configure a loopback-only test bed (private config, queue, maps and a
# private rsyslogd: Sendmail logs only through syslog), drive every scenario
# in drive.py against tests/mta/sink.py and tests/mta/milter.py, capture the
# syslog file, stop everything and restore the machine.
#
#   bash tests/mta/sendmail/run.sh [--no-install] [--out DIR] [--keep-work] [--e2e]
#                                  [--exporter BIN [--results-dir DIR]]
#
# Outputs (default --out = tests/fixtures/sendmail): scenarios.log (RFC 3164,
# from rsyslogd), scenarios.expected.json, scenarios.sink.jsonl.
#
# --exporter BIN: start BIN following the fresh syslog file from its beginning
# before rsyslogd starts, and after the driver assert its /metrics against
# this run's expected.json (tests/mta/e2e_check.py); DIR/sendmail-syslog.json
# gets a summary for e2e.sh's table. The exit status says whether all passed.
#
# Sendmail waits about a minute at start when the host name is not fully
# qualified: if `hostname -f` has no dot, a line "127.0.1.1 HOST.mta-test.example
# HOST" is put first in /etc/hosts for the run (restored afterwards).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mta=$(cd "$here/.." && pwd)
repo=$(cd "$mta/../.." && pwd)
MTA_LOG_TAG=sendmail
# shellcheck source=../lib.sh
. "$mta/lib.sh"

install=1
out="$repo/tests/fixtures/sendmail"
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
[ "$(id -u)" = 0 ] || { echo "run.sh must run as root (it installs and starts Sendmail)" >&2; exit 2; }
cd /

# Ports on loopback: the sink opens SINK_PORT..SINK_PORT+6; +8 stays closed.
SINK_PORT=2525
CLOSED_PORT=$((SINK_PORT + 8))
MX_PORT=10025
SUBMISSION_PORT=10587
MILTER_PORT=10030
COMMAND_TIMEOUT=3s
QUEUE_RETURN=15

# Not under /var/tmp: Sendmail refuses maps and alias files below a
# world-writable directory.
WORK=/var/lib/mta-test-sendmail
HOSTS_BACKUP=/var/lib/mta-test-sendmail.hosts
PY=${PYTHON:-python3}
CF=$WORK/sendmail.cf

install_packages() {
  purge_other_mtas sendmail
  apt_install sendmail-bin sendmail-cf m4 swaks python3 rsyslog libsasl2-modules
}

qualify_hostname() {
  local h
  h=$(hostname)
  case "$(hostname -f 2>/dev/null || true)" in *.*) return 0 ;; esac
  [ -e "$HOSTS_BACKUP" ] || cp -p /etc/hosts "$HOSTS_BACKUP"
  log "qualifying the host name for Sendmail: 127.0.1.1 $h.mta-test.example $h (first line of /etc/hosts, restored afterwards)"
  { echo "127.0.1.1 $h.mta-test.example $h"; cat "$HOSTS_BACKUP"; } > /etc/hosts
}

restore_hosts() {
  if [ -e "$HOSTS_BACKUP" ]; then cat "$HOSTS_BACKUP" > /etc/hosts; rm -f "$HOSTS_BACKUP"; fi
}

render() {  # render SRC DST
  sed -e "s|@WORK@|$WORK|g" -e "s|@MX_PORT@|$MX_PORT|g" -e "s|@SUBMISSION_PORT@|$SUBMISSION_PORT|g" \
      -e "s|@MILTER_PORT@|$MILTER_PORT|g" -e "s|@COMMAND_TIMEOUT@|$COMMAND_TIMEOUT|g" \
      -e "s|@QUEUE_RETURN@|${QUEUE_RETURN}s|g" \
      -e "s|@SINK_PORT@|$SINK_PORT|g" -e "s|@SINK_GREET554@|$((SINK_PORT + 1))|g" \
      -e "s|@SINK_GREET421@|$((SINK_PORT + 2))|g" -e "s|@SINK_AUTH535@|$((SINK_PORT + 3))|g" \
      -e "s|@SINK_HELO550@|$((SINK_PORT + 4))|g" -e "s|@SINK_FILTER@|$((SINK_PORT + 5))|g" \
      -e "s|@SINK_ACCEPT@|$((SINK_PORT + 6))|g" -e "s|@CLOSED_PORT@|$CLOSED_PORT|g" "$1" > "$2"
}

prepare_work() {
  rm -rf "$WORK"
  mkdir -p "$WORK/mqueue" "$WORK/files"
  chmod 755 "$WORK"
  chmod 700 "$WORK/mqueue"
  render "$here/conf/sendmail.mc.in" "$WORK/sendmail.mc"
  m4 "$WORK/sendmail.mc" > "$CF"
  local f
  for f in access mailertable authinfo aliases local-host-names service.switch hosts; do
    render "$here/conf/$f" "$WORK/$f"
  done
  for f in access mailertable authinfo; do makemap hash "$WORK/$f" < "$WORK/$f"; done
  # The *file* mailer appends as the default user (daemon): give it the file.
  install -o daemon -g daemon -m 0600 /dev/null "$WORK/files/tofile"
  /usr/sbin/sendmail -C "$CF" -bi >/dev/null
}

pids=()
start_helpers() {
  "$PY" "$mta/sink.py" --port "$SINK_PORT" --host 127.0.0.1 --host ::1 \
      --journal "$WORK/sink.jsonl" > "$WORK/sink.out" 2>&1 &
  pids+=($!)
  "$PY" "$mta/milter.py" --port "$MILTER_PORT" --journal "$WORK/milter.jsonl" > "$WORK/milter.out" 2>&1 &
  pids+=($!)
  wait_tcp "$SINK_PORT" "$MILTER_PORT"
}

stop_helpers() {
  local p
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  pids=()
}

start_sendmail() {
  log "sendmail -bd (127.0.0.1 and ::1 port $MX_PORT, submission 127.0.0.1:$SUBMISSION_PORT)"
  /usr/sbin/sendmail -C "$CF" -bd
  local i
  for i in $(seq 100); do [ -s "$WORK/sendmail.pid" ] && break; sleep 0.1; done
  [ -s "$WORK/sendmail.pid" ] || die "sendmail did not write its pid file"
}

stop_sendmail() {
  [ -s "$WORK/sendmail.pid" ] || return 0
  local pid i
  pid=$(head -1 "$WORK/sendmail.pid")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$WORK/sendmail.pid"
}

cleanup() {
  set +e
  stop_sendmail
  stop_helpers
  stop_exporter
  stop_private_rsyslogd "$WORK"
  restore_hosts
  [ "$keep_work" = 1 ] || rm -rf "$WORK"
  pkg_snapshot_restore
}
trap cleanup EXIT
failed=0

pkg_snapshot_begin
# Before the install: the package's own configuration step runs Sendmail,
# which waits a minute for an unqualified host name.
qualify_hostname
[ "$install" = 1 ] && install_packages
prepare_work
logfile=$WORK/syslog.log
[ -n "$exporter" ] && start_exporter "$exporter" "$logfile" "$WORK/exporter.out"
start_private_rsyslogd "$WORK" "$logfile"
start_helpers
start_sendmail
log "driving the scenarios (drive.py)"
"$PY" "$here/drive.py" --log "$logfile" --journal "$WORK/sink.jsonl" --milter-journal "$WORK/milter.jsonl" \
    --expected "$WORK/expected.json" --cf "$CF" --mx-port "$MX_PORT" \
    --submission-port "$SUBMISSION_PORT" --queue-return "$QUEUE_RETURN" || {
  failed=1
  log "drive.py FAILED"
  if [ -n "$results_dir" ]; then echo "drive.py failed" >> "$results_dir/sendmail.capture-failed"; fi
}
if [ -n "$exporter" ]; then
  log "e2e: asserting the exporter's /metrics against this run's expected.json"
  "$PY" "$mta/e2e_check.py" --mta sendmail --name "sendmail (syslog)" --log "$logfile" \
      --exporter-log "$WORK/exporter.out" --expected "$WORK/expected.json" \
      ${results_dir:+--result "$results_dir/sendmail-syslog.json"} || failed=1
  stop_exporter
fi
cp "$logfile" "$WORK/capture.log"
stop_sendmail
stop_helpers
mkdir -p "$out"
cp "$WORK/capture.log" "$out/scenarios.log"
cp "$WORK/expected.json" "$out/scenarios.expected.json"
cp "$WORK/sink.jsonl" "$out/scenarios.sink.jsonl"
chmod 644 "$out"/scenarios.*
log "wrote $out/scenarios.log ($(wc -l < "$out/scenarios.log") lines) and scenarios.expected.json"
if [ "$failed" = 1 ]; then log "done: FAILED"; exit 1; fi
log "done"
