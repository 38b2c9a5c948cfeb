#!/usr/bin/env bash
# Install Postfix 3.7 + swaks, configure a loopback-only test bed, drive every
# scenario in drive.py against tests/mta/sink.py, capture the logs, check them
# against the expected counts, stop everything and restore the machine.
#
#   bash tests/mta/postfix/run.sh [--route file|syslog|both] [--set NAME] [--no-install]
#                                 [--out DIR] [--keep-work] [--exporter BIN [--results-dir DIR]]
#
# --e2e: the end-to-end selection (maillog_file route only).
# --exporter BIN: also run the end-to-end check (tests/mta/e2e.sh uses this):
# start BIN following the fresh log from its beginning before Postfix starts,
# and after the driver assert its /metrics against this run's expected.json
# (tests/mta/e2e_check.py); the exit status says whether it passed, and
# DIR/postfix-ROUTE.json gets a summary for e2e.sh's table.
#
# Outputs (default --out = tests/fixtures/postfix, --set = scenarios):
#   NAME.log + NAME.expected.json                 maillog_file route
#   NAME-syslog.log + NAME-syslog.expected.json   RFC 3164 via a private rsyslogd
#   NAME.sink.jsonl                               the sink's journal (file route)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mta=$(cd "$here/.." && pwd)
repo=$(cd "$mta/../.." && pwd)
MTA_LOG_TAG=postfix
# shellcheck source=../lib.sh
. "$mta/lib.sh"

route=both
set_name=scenarios
install=1
out="$repo/tests/fixtures/postfix"
keep_work=0
exporter=
results_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --route) route=$2; shift 2 ;;
    --set) set_name=$2; shift 2 ;;
    --no-install) install=0; shift ;;
    --out) out=$(realpath -m "$2"); shift 2 ;;
    --keep-work) keep_work=1; shift ;;
    --e2e) route=file; set_name=e2e; shift ;;  # what tests/mta/e2e.sh runs
    --exporter) exporter=$(realpath "$2"); shift 2 ;;
    --results-dir) results_dir=$(realpath -m "$2"); shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$route" in file|syslog|both) ;; *) echo "--route must be file, syslog or both" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "run.sh must run as root (it installs and starts Postfix)" >&2; exit 2; }

# Ports (all on loopback). The sink opens SINK_PORT..SINK_PORT+6; +8 stays closed.
SINK_PORT=2525
CLOSED_PORT=$((SINK_PORT + 8))
SUBMISSION_PORT=10587
MX_PORT=10025
POSTSCREEN_PORT=10026
EARLY_PORT=10027
CONNECT_PORT=10028
MILTER_SMTPD_PORT=10029
MILTER_PORT=10030
LIFETIME=30s

WORK=/var/tmp/mta-postfix
CONF=/etc/postfix/mta-test
BACKUP=/var/tmp/mta-postfix-etc-backup
PY=${PYTHON:-python3}

install_packages() {
  purge_other_mtas postfix
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  local pkgs=(postfix swaks libsasl2-modules python3)
  [ "$route" != file ] && pkgs+=(rsyslog)
  apt_install "${pkgs[@]}"
}

backup_etc() {
  mkdir -p "$BACKUP"
  for f in main.cf master.cf; do
    if [ -e "/etc/postfix/$f" ] && [ ! -e "$BACKUP/$f" ] && [ ! -e "$BACKUP/$f.absent" ]; then
      cp -p "/etc/postfix/$f" "$BACKUP/$f"
    elif [ ! -e "/etc/postfix/$f" ] && [ ! -e "$BACKUP/$f" ]; then
      : > "$BACKUP/$f.absent"
    fi
  done
}

restore_etc() {
  for f in main.cf master.cf; do
    if [ -e "$BACKUP/$f" ]; then cp -p "$BACKUP/$f" "/etc/postfix/$f"
    elif [ -e "$BACKUP/$f.absent" ]; then rm -f "/etc/postfix/$f"; fi
  done
  rm -rf "$BACKUP" "$CONF"
}

render() {  # render SRC DST: replace @VAR@ placeholders
  sed -e "s|@CONF@|$CONF|g" -e "s|@WORK@|$WORK|g" -e "s|@MAILLOG_FILE@|$MAILLOG_FILE|g" \
      -e "s|@LIFETIME@|$LIFETIME|g" \
      -e "s|@SINK_PORT@|$SINK_PORT|g" -e "s|@SINK_GREET554@|$((SINK_PORT + 1))|g" \
      -e "s|@SINK_GREET421@|$((SINK_PORT + 2))|g" -e "s|@SINK_AUTH535@|$((SINK_PORT + 3))|g" \
      -e "s|@SINK_HELO550@|$((SINK_PORT + 4))|g" -e "s|@SINK_FILTER@|$((SINK_PORT + 5))|g" \
      -e "s|@SINK_ACCEPT@|$((SINK_PORT + 6))|g" -e "s|@CLOSED_PORT@|$CLOSED_PORT|g" \
      -e "s|@SUBMISSION_PORT@|$SUBMISSION_PORT|g" -e "s|@MX_PORT@|$MX_PORT|g" \
      -e "s|@POSTSCREEN_PORT@|$POSTSCREEN_PORT|g" -e "s|@EARLY_PORT@|$EARLY_PORT|g" \
      -e "s|@CONNECT_PORT@|$CONNECT_PORT|g" -e "s|@MILTER_SMTPD_PORT@|$MILTER_SMTPD_PORT|g" \
      -e "s|@MILTER_PORT@|$MILTER_PORT|g" "$1" > "$2"
}

configure() {  # configure ROUTE
  local r=$1
  if [ "$r" = file ]; then MAILLOG_FILE=$WORK/maillog; else MAILLOG_FILE=; fi
  mkdir -p "$CONF"
  for f in "$here"/conf/*; do
    b=$(basename "$f")
    case "$b" in
      main.cf.in) render "$f" /etc/postfix/main.cf ;;
      master.cf.in) render "$f" /etc/postfix/master.cf ;;
      *.in) render "$f" "$CONF/${b%.in}" ;;
      pipe-exit.sh) install -m 0755 "$f" "$WORK/pipe-exit.sh" ;;
      *) cp "$f" "$CONF/$b" ;;
    esac
  done
  postfix check >/dev/null
}

prepare_work() {
  rm -rf "$WORK"
  mkdir -p "$WORK/spool" "$WORK/vmail"
  chmod 1777 "$WORK/spool"
  chown nobody:nogroup "$WORK/vmail"
  mkdir -p "$WORK/files"; chown nobody:nogroup "$WORK/files"
  chmod 755 "$WORK"
}

pids=()
start_helpers() {  # start_helpers ROUTE
  "$PY" "$mta/sink.py" --port "$SINK_PORT" --host 127.0.0.1 --host ::1 \
      --journal "$WORK/sink.jsonl" > "$WORK/sink.out" 2>&1 &
  pids+=($!)
  "$PY" "$mta/milter.py" --port "$MILTER_PORT" --journal "$WORK/milter.jsonl" > "$WORK/milter.out" 2>&1 &
  pids+=($!)
  [ "$1" = syslog ] && start_private_rsyslogd "$WORK" "$WORK/syslog.log"
  for _ in $(seq 50); do
    "$PY" - "$SINK_PORT" "$MILTER_PORT" 2>/dev/null <<'EOF' && break
import socket, sys
for p in sys.argv[1:]:
    socket.create_connection(("127.0.0.1", int(p)), 1).close()
EOF
    sleep 0.1
  done
}

stop_helpers() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  pids=()
  stop_private_rsyslogd "$WORK"
}

postfix_running() { postfix status >/dev/null 2>&1; }

stop_postfix() {
  if postfix_running; then postfix stop >/dev/null 2>&1 || true; fi
  for _ in $(seq 100); do postfix_running || break; sleep 0.1; done
}

cleanup() {
  set +e
  postsuper -d ALL >/dev/null 2>&1
  stop_postfix
  stop_helpers
  stop_exporter
  rm -f /var/lib/postfix/mta_test_psc_cache*.db
  restore_etc
  [ "$keep_work" = 1 ] || rm -rf "$WORK"
  pkg_snapshot_restore
}
trap cleanup EXIT
e2e_failed=0

run_route() {  # run_route ROUTE OUTNAME
  local r=$1 name=$2 logfile
  log "=== route $r -> $name.log"
  stop_postfix
  prepare_work
  configure "$r"
  postsuper -d ALL >/dev/null 2>&1 || true  # leftovers of an aborted run (cannot log: postfix is down)
  rm -f /var/lib/postfix/mta_test_psc_cache*.db
  if [ "$r" = file ]; then logfile=$WORK/maillog; else logfile=$WORK/syslog.log; fi
  [ -n "$exporter" ] && start_exporter "$exporter" "$logfile" "$WORK/exporter.out"
  start_helpers "$r"
  log "postfix start; driving the scenarios (drive.py)"
  postfix start >/dev/null 2>&1
  for _ in $(seq 100); do [ -s "$logfile" ] && break; sleep 0.1; done
  "$PY" "$here/drive.py" --log "$logfile" --journal "$WORK/sink.jsonl" \
      --milter-journal "$WORK/milter.jsonl" --expected "$WORK/expected.json" \
      --sink-port "$SINK_PORT" --submission-port "$SUBMISSION_PORT" --mx-port "$MX_PORT" \
      --early-port "$EARLY_PORT" --connect-port "$CONNECT_PORT" \
      --postscreen-port "$POSTSCREEN_PORT" --milter-smtpd-port "$MILTER_SMTPD_PORT" \
      --lifetime "${LIFETIME%s}"
  if [ -n "$exporter" ]; then
    log "e2e: asserting the exporter's /metrics against this run's expected.json"
    "$PY" "$mta/e2e_check.py" --mta postfix --name "postfix ($r route)" --log "$logfile" \
        --exporter-log "$WORK/exporter.out" --expected "$WORK/expected.json" \
        ${results_dir:+--result "$results_dir/postfix-$r.json"} || e2e_failed=1
    stop_exporter
  fi
  cp "$logfile" "$WORK/capture.log"  # snapshot before the clean-up below logs anything
  postsuper -d ALL >/dev/null 2>&1 || true
  stop_postfix
  stop_helpers
  bash "$here/check.sh" "$WORK/capture.log" "$WORK/expected.json"
  mkdir -p "$out"
  cp "$WORK/capture.log" "$out/$name.log"
  cp "$WORK/expected.json" "$out/$name.expected.json"
  [ "$r" = file ] && cp "$WORK/sink.jsonl" "$out/$name.sink.jsonl"
  log "wrote $out/$name.log ($(wc -l < "$out/$name.log") lines) and $name.expected.json"
}

pkg_snapshot_begin
[ "$install" = 1 ] && install_packages
backup_etc
case "$route" in
  file) run_route file "$set_name" ;;
  syslog) run_route syslog "$set_name-syslog" ;;
  both)
    run_route file "$set_name"
    if [ -e /dev/log ]; then
      log "skipping the syslog route: /dev/log exists (a system syslog daemon owns it)"
    else
      run_route syslog "$set_name-syslog"
    fi ;;
esac
if [ "$e2e_failed" = 1 ]; then log "done: e2e FAILED"; exit 1; fi
log "done"
