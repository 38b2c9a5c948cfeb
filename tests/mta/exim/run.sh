#!/usr/bin/env bash
# Install Exim 4.96 (exim4-daemon-light) + swaks, configure a loopback-only
# test bed, drive every scenario in drive.py against tests/mta/sink.py,
# capture mainlog and rejectlog, stop everything and restore the machine.
#
#   bash tests/mta/exim/run.sh [--variant debian|all|both] [--no-install] [--out DIR]
#                              [--keep-work] [--e2e] [--exporter BIN [--results-dir DIR]]
#
# Variants (log_selector):
#   debian  Debian's default (+smtp_protocol_error +smtp_syntax_error
#           +tls_certificate_verified +tls_peerdn on top of Exim's defaults,
#           which include smtp_confirmation: C="250 ..." on deliveries):
#           no pid, no milliseconds               -> scenarios.log
#   all     +all: [pid], milliseconds, ports, T="subject", QT=/DT=, cwd= ...
#                                                  -> scenarios-all.log
# Each also writes NAME.rejectlog, and an .expected.json for both files.
#
# --e2e: the end-to-end selection (the +all variant).
# --exporter BIN: start BIN following the fresh mainlog from its beginning
# before Exim starts, and after the driver assert its /metrics against this
# run's expected.json (tests/mta/e2e_check.py); DIR/exim-VARIANT.json gets a
# summary for e2e.sh's table. The exit status says whether everything passed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mta=$(cd "$here/.." && pwd)
repo=$(cd "$mta/../.." && pwd)
MTA_LOG_TAG=exim
# shellcheck source=../lib.sh
. "$mta/lib.sh"

variant=both
install=1
out="$repo/tests/fixtures/exim"
keep_work=0
exporter=
results_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant=$2; shift 2 ;;
    --no-install) install=0; shift ;;
    --out) out=$(realpath -m "$2"); shift 2 ;;
    --keep-work) keep_work=1; shift ;;
    --e2e) variant=all; shift ;;
    --exporter) exporter=$(realpath "$2"); shift 2 ;;
    --results-dir) results_dir=$(realpath -m "$2"); shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
cd /  # Exim logs its cwd with +arguments: keep the capture independent of the caller
case "$variant" in debian|all|both) ;; *) echo "--variant must be debian, all or both" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "run.sh must run as root (it installs and starts Exim)" >&2; exit 2; }

# Ports on loopback: the sink opens SINK_PORT..SINK_PORT+6; +8 stays closed.
SINK_PORT=2525
CLOSED_PORT=$((SINK_PORT + 8))
# A greet421 listener of its own for the two-host scenario: Exim keeps
# host-wide retry records per address and port, and the greeting-421
# scenario has already put SINK_PORT+2 on hold (later attempts skip it).
MULTI_FIRST_PORT=$((SINK_PORT + 15))
MX_PORT=10025
SUBMISSION_PORT=10587
CONNECT_PORT=10028
RECEIVE_TIMEOUT=2s
EXPIRE_CUTOFF=10

WORK=/var/tmp/mta-exim
CONF_FILE=/etc/exim4/exim4.conf   # read before Debian's generated configuration
BACKUP=/var/tmp/mta-exim-etc-backup
PY=${PYTHON:-python3}
EXIM_USER=Debian-exim

install_packages() {
  purge_other_mtas exim
  apt_install exim4-daemon-light swaks python3
}

backup_etc() {
  mkdir -p "$BACKUP"
  if [ -e "$CONF_FILE" ] && [ ! -e "$BACKUP/exim4.conf" ]; then cp -p "$CONF_FILE" "$BACKUP/exim4.conf"; fi
}

restore_etc() {
  if [ -e "$BACKUP/exim4.conf" ]; then cp -p "$BACKUP/exim4.conf" "$CONF_FILE"; else rm -f "$CONF_FILE"; fi
  rm -rf "$BACKUP"
}

selector_of() {
  case "$1" in
    debian) echo "+smtp_protocol_error +smtp_syntax_error +tls_certificate_verified +tls_peerdn" ;;
    all) echo "+all" ;;
  esac
}

render() {  # render SRC DST VARIANT
  local keep_env="keep_environment ="
  # Without keep_environment Exim logs a two-line warning (the second line
  # starts with a space) each time it starts; Debian's own configuration sets
  # it, the "all" variant keeps the warning as a real multi-line entry.
  [ "$3" = all ] && keep_env="# keep_environment not set"
  sed -e "s|@CONF@|$WORK/conf|g" -e "s|@WORK@|$WORK|g" \
      -e "s|@LOG_SELECTOR@|$(selector_of "$3")|g" -e "s|@KEEP_ENVIRONMENT@|$keep_env|g" \
      -e "s|@RECEIVE_TIMEOUT@|$RECEIVE_TIMEOUT|g" -e "s|@EXPIRE_CUTOFF@|$EXPIRE_CUTOFF|g" \
      -e "s|@SINK_PORT@|$SINK_PORT|g" -e "s|@SINK_GREET554@|$((SINK_PORT + 1))|g" \
      -e "s|@SINK_GREET421@|$((SINK_PORT + 2))|g" -e "s|@SINK_AUTH535@|$((SINK_PORT + 3))|g" \
      -e "s|@SINK_HELO550@|$((SINK_PORT + 4))|g" -e "s|@SINK_FILTER@|$((SINK_PORT + 5))|g" \
      -e "s|@SINK_ACCEPT@|$((SINK_PORT + 6))|g" -e "s|@CLOSED_PORT@|$CLOSED_PORT|g" -e "s|@MULTI_FIRST_PORT@|$MULTI_FIRST_PORT|g" \
      -e "s|@MX_PORT@|$MX_PORT|g" -e "s|@SUBMISSION_PORT@|$SUBMISSION_PORT|g" \
      -e "s|@CONNECT_PORT@|$CONNECT_PORT|g" "$1" > "$2"
}

prepare_work() {  # prepare_work VARIANT
  rm -rf "$WORK"
  mkdir -p "$WORK/spool" "$WORK/mail" "$WORK/conf" "$WORK/log"
  render "$here/conf/exim4.conf.in" "$CONF_FILE" "$1"
  render "$here/conf/routes.in" "$WORK/conf/routes" "$1"
  cp "$here/conf/transports" "$here/conf/relay_recipients" "$WORK/conf/"
  chown -R "$EXIM_USER:$EXIM_USER" "$WORK/spool" "$WORK/mail" "$WORK/log"
  chmod 755 "$WORK" "$WORK/log"
  exim4 -bV >/dev/null 2>&1 || die "exim4 rejects the rendered configuration ($CONF_FILE)"
  rm -f "$WORK"/log/*  # (with +all, -bV itself logged its command line)
}

SINK_PID=
start_sink() {
  "$PY" "$mta/sink.py" --port "$SINK_PORT" --host 127.0.0.1 --host ::1 \
      --listen "$MULTI_FIRST_PORT=greet421" --journal "$WORK/sink.jsonl" > "$WORK/sink.out" 2>&1 &
  SINK_PID=$!
  wait_tcp "$SINK_PORT"
}

stop_sink() {
  [ -n "$SINK_PID" ] || return 0
  kill "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=
}

start_exim() {
  log "exim4 -bd (listening on 127.0.0.1/::1 ports $MX_PORT $SUBMISSION_PORT $CONNECT_PORT)"
  exim4 -bd -oP "$WORK/exim.pid"
  # (not the connect port: its ACL would log a rejection of this probe)
  wait_tcp "$MX_PORT" "$SUBMISSION_PORT"
}

stop_exim() {
  [ -e "$WORK/exim.pid" ] || return 0
  local pid i
  pid=$(cat "$WORK/exim.pid")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$WORK/exim.pid"
}

cleanup() {
  set +e
  stop_exim
  stop_sink
  stop_exporter
  restore_etc
  [ "$keep_work" = 1 ] || rm -rf "$WORK"
  pkg_snapshot_restore
}
trap cleanup EXIT
failed=0

run_variant() {  # run_variant VARIANT OUTNAME
  local v=$1 name=$2
  log "=== variant $v (log_selector = $(selector_of "$v")) -> $name.log"
  stop_exim
  prepare_work "$v"
  [ -n "$exporter" ] && start_exporter "$exporter" "$WORK/log/mainlog" "$WORK/exporter.out"
  start_sink
  start_exim
  log "driving the scenarios (drive.py --variant $v)"
  "$PY" "$here/drive.py" --variant "$v" --log "$WORK/log/mainlog" --rejectlog "$WORK/log/rejectlog" \
      --journal "$WORK/sink.jsonl" --expected "$WORK/expected.json" \
      --reject-expected "$WORK/reject.expected.json" \
      --sink-port "$SINK_PORT" --mx-port "$MX_PORT" --submission-port "$SUBMISSION_PORT" \
      --connect-port "$CONNECT_PORT" --receive-timeout "${RECEIVE_TIMEOUT%s}" \
      --expire-cutoff "$EXPIRE_CUTOFF" || {
    failed=1
    log "drive.py FAILED (variant $v)"
    if [ -n "$results_dir" ]; then echo "drive.py failed (variant $v)" >> "$results_dir/exim.capture-failed"; fi
  }
  if [ -n "$exporter" ]; then
    log "e2e: asserting the exporter's /metrics against this run's expected.json"
    "$PY" "$mta/e2e_check.py" --mta exim --name "exim (log_selector $v)" --log "$WORK/log/mainlog" \
        --exporter-log "$WORK/exporter.out" --expected "$WORK/expected.json" \
        ${results_dir:+--result "$results_dir/exim-$v.json"} || failed=1
    stop_exporter
  fi
  cp "$WORK/log/mainlog" "$WORK/capture.log"
  cp "$WORK/log/rejectlog" "$WORK/capture.rejectlog"
  stop_exim
  stop_sink
  mkdir -p "$out"
  cp "$WORK/capture.log" "$out/$name.log"
  cp "$WORK/expected.json" "$out/$name.expected.json"
  cp "$WORK/capture.rejectlog" "$out/$name.rejectlog"
  cp "$WORK/reject.expected.json" "$out/$name.rejectlog.expected.json"
  [ "$v" = debian ] && cp "$WORK/sink.jsonl" "$out/$name.sink.jsonl"
  chmod 644 "$out/$name".*  # (Exim creates its logs 0640)
  log "wrote $out/$name.log ($(wc -l < "$out/$name.log") lines), $name.rejectlog ($(wc -l < "$out/$name.rejectlog") lines) and their expected.json"
}

pkg_snapshot_begin
[ "$install" = 1 ] && install_packages
backup_etc
case "$variant" in
  debian) run_variant debian scenarios ;;
  all) run_variant all scenarios-all ;;
  both) run_variant debian scenarios; run_variant all scenarios-all ;;
esac
if [ "$failed" = 1 ]; then log "done: FAILED"; exit 1; fi
log "done"
