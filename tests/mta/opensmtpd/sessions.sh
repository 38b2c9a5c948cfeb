#!/usr/bin/env bash
# OpenSMTPD 6.8 sessions (TLS out, clients that leave) and a real queue (no TLS in,
# no AUTH: see sessions-conf/smtpd.conf.in): install, configure a loopback-only bed, drive sessions.py through a
# private rsyslogd, check the captured log against what the driver did, then
# compare mta_exporter's queue families with `smtpctl show queue`. Restores
# the machine and purges what it installed.
#
#   bash tests/mta/opensmtpd/sessions.sh [--no-install] [--out DIR] [--keep-work]
#                                        [--exporter BIN [--results-dir DIR]]
#
# Outputs (default --out = tests/fixtures/opensmtpd): sessions.log and
# sessions.families.json (see tests/mta/README.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mta=$(cd "$here/.." && pwd)
repo=$(cd "$mta/../.." && pwd)
MTA_LOG_TAG=opensmtpd-sessions
# shellcheck source=../lib.sh
. "$mta/lib.sh"

sessions_options opensmtpd OpenSMTPD "$@"
cd /

SINK_PORT=2525
TLS_VERIFY_PORT=2534
MX_PORT=10025

WORK=/var/tmp/mta-opensmtpd-sessions
SPOOL=/var/spool/smtpd
PY=${PYTHON:-python3}
spool_existed=0
[ -e "$SPOOL" ] && spool_existed=1

install_packages() {
  purge_other_mtas opensmtpd
  apt_install opensmtpd swaks python3 rsyslog openssl
}

render() {  # render SRC DST
  sed -e "s|@WORK@|$WORK|g" -e "s|@MX_PORT@|$MX_PORT|g" -e "s|@SINK_PORT@|$SINK_PORT|g" \
      -e "s|@TLS_VERIFY_PORT@|$TLS_VERIFY_PORT|g" "$1" > "$2"
}

prepare_work() {
  rm -rf "$WORK"
  mkdir -p "$WORK"
  chmod 755 "$WORK"
  "$PY" "$mta/pki.py" "$WORK/pki"
  render "$here/sessions-conf/smtpd.conf.in" "$WORK/smtpd.conf"
  smtpd -n -f "$WORK/smtpd.conf" >/dev/null
}

pids=()
start_helpers() {
  "$PY" "$mta/sink.py" --port "$SINK_PORT" --host 127.0.0.1 --host ::1 \
      --listen "$TLS_VERIFY_PORT=tls" \
      --tls-cert "$WORK/pki/sink.crt" --tls-key "$WORK/pki/sink.key" \
      --journal "$WORK/sink.jsonl" > "$WORK/sink.out" 2>&1 &
  pids+=($!)
  wait_tcp "$SINK_PORT" "$TLS_VERIFY_PORT"
}

stop_helpers() {
  local p
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  pids=()
}

exporters=()
start_queue_exporter() {  # NAME ARGS...
  local name=$1; shift
  "$exporter" --web.listen-address 127.0.0.1:0 "$@" > "$WORK/$name.out" 2>&1 &
  exporters+=($!)
  local i
  for i in $(seq 100); do
    grep -q 'message=listening' "$WORK/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  sed -n 's/.*message=listening address=\([^ ]*\).*/\1/p' "$WORK/$name.out" | head -1 > "$WORK/$name.addr"
  [ -s "$WORK/$name.addr" ] || die "exporter $name did not start: $(cat "$WORK/$name.out")"
}

stop_exporters() {
  for p in "${exporters[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${exporters[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  exporters=()
}

SMTPD_PID=
start_smtpd() {
  smtpd -F -f "$WORK/smtpd.conf" > "$WORK/smtpd.out" 2>&1 &
  SMTPD_PID=$!
  # The probe connection is a session the driver counts (--probes 1).
  wait_tcp "$MX_PORT"
}

stop_smtpd() {
  [ -n "$SMTPD_PID" ] || return 0
  kill "$SMTPD_PID" 2>/dev/null || true
  wait "$SMTPD_PID" 2>/dev/null || true
  SMTPD_PID=
}

cleanup() {
  set +e
  stop_smtpd
  stop_helpers
  stop_exporters
  stop_private_rsyslogd "$WORK"
  [ "$spool_existed" = 1 ] || rm -rf "$SPOOL"
  [ "$keep_work" = 1 ] || rm -rf "$WORK"
  pkg_snapshot_restore
}
trap cleanup EXIT

pkg_snapshot_begin
[ "$install" = 1 ] && install_packages
prepare_work
rm -rf "${SPOOL:?}"/*
logfile=$WORK/syslog.log
if [ -n "$exporter" ]; then
  start_queue_exporter queue --log.path "$logfile" --log.from-beginning --queue.spool "opensmtpd=$SPOOL"
fi
start_private_rsyslogd "$WORK" "$logfile"
start_helpers
start_smtpd
log "driving the session scenarios (sessions.py)"
checks=()
check() {
  local name=$1; shift
  if "$@"; then checks+=("$name=1"); else checks+=("$name=0"); fi
}
check "scenarios and queue filled" "$PY" "$here/sessions.py" --phase scenarios --log "$logfile" \
    --journal "$WORK/sink.jsonl" --expected-out "$WORK/driver.json" --mx-port "$MX_PORT" --probes 1
cp "$logfile" "$WORK/capture.log"
"$PY" "$mta/families.py" --mta opensmtpd "$WORK/capture.log" --out "$WORK/sessions.families.json"
queue_args=()
[ -n "$exporter" ] && queue_args=(--exporter "queue=$(cat "$WORK/queue.addr")")
check "log agrees with the driver; exporter queue = smtpctl show queue" "$PY" "$here/sessions.py" --phase queue \
    --log "$WORK/capture.log" --journal "$WORK/sink.jsonl" \
    --families "$WORK/sessions.families.json" --expected-in "$WORK/driver.json" \
    --mx-port "$MX_PORT" "${queue_args[@]}"
if [ -n "$exporter" ]; then
  check "exporter families = the log's" "$PY" "$mta/families_check.py" --url "http://$(cat "$WORK/queue.addr")/metrics" \
      --log "$logfile" --expected "$WORK/sessions.families.json" --name "opensmtpd sessions"
fi
failed=0
for c in "${checks[@]}"; do [ "${c##*=}" = 1 ] || failed=1; done
if [ -n "$results_dir" ]; then
  mkdir -p "$results_dir"
  "$PY" - "$results_dir/opensmtpd-sessions.json" "${checks[@]}" <<'PYEOF'
import json, sys
checks = [{"check": c.rsplit("=", 1)[0], "pass": c.endswith("=1")} for c in sys.argv[2:]]
json.dump({"name": "opensmtpd sessions+queue", "pass": all(c["pass"] for c in checks), "checks": checks},
          open(sys.argv[1], "w"))
PYEOF
fi
if [ "$failed" = 1 ]; then
  keep_work=1
  log "done: FAILED (${checks[*]}); fixtures not written, the capture is kept in $WORK"
  exit 1
fi
mkdir -p "$out"
cp "$WORK/capture.log" "$out/sessions.log"
cp "$WORK/sessions.families.json" "$out/sessions.families.json"
log "wrote $out/sessions.log ($(wc -l < "$out/sessions.log") lines) and sessions.families.json"
log "done"
