#!/usr/bin/env bash
# Exim 4.96 sessions, TLS, SASL, ACL discard and freeze, and a real queue:
# install, configure a loopback-only test bed (sessions-conf/), drive
# sessions.py, capture the mainlog, check it against what the driver did,
# then compare mta_exporter's queue families with `exim -bpc` / `exim -bp`.
# Restores the machine and purges what it installed.
#
#   bash tests/mta/exim/sessions.sh [--no-install] [--out DIR] [--keep-work]
#                                   [--exporter BIN [--results-dir DIR]]
#
# Outputs (default --out = tests/fixtures/exim): sessions.log (the mainlog,
# log_selector = +all) and sessions.families.json (tests/mta/families.py's
# reading of it, checked against the driver's counts). With --exporter BIN:
# the release exporter follows the mainlog and reads the spool at every
# scrape (--queue.spool exim=SPOOL); its queue families must agree with
# exim -bpc/-bp and its activity families with sessions.families.json.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mta=$(cd "$here/.." && pwd)
repo=$(cd "$mta/../.." && pwd)
MTA_LOG_TAG=exim-sessions
# shellcheck source=../lib.sh
. "$mta/lib.sh"

sessions_options exim Exim "$@"

SINK_PORT=2525
TLS_VERIFY_PORT=2534
TLS_TRUST_PORT=2535
TLS_BROKEN_PORT=2536
MX_PORT=10025
SUBMISSION_PORT=10587
PASSWORD=correct-horse-sessions

WORK=/var/tmp/mta-exim-sessions
CONF_FILE=/etc/exim4/exim4.conf
BACKUP=/var/tmp/mta-exim-sessions-etc-backup
PY=${PYTHON:-python3}
EXIM_USER=Debian-exim

install_packages() {
  purge_other_mtas exim
  apt_install exim4-daemon-light swaks python3 openssl
}

backup_etc() {
  mkdir -p "$BACKUP"
  if [ -e "$CONF_FILE" ] && [ ! -e "$BACKUP/exim4.conf" ]; then cp -p "$CONF_FILE" "$BACKUP/exim4.conf"; fi
}

restore_etc() {
  if [ -e "$BACKUP/exim4.conf" ]; then cp -p "$BACKUP/exim4.conf" "$CONF_FILE"; else rm -f "$CONF_FILE"; fi
  rm -rf "$BACKUP"
}

render() {  # render SRC DST
  sed -e "s|@CONF@|$WORK/conf|g" -e "s|@WORK@|$WORK|g" -e "s|@PASSWORD@|$PASSWORD|g" \
      -e "s|@SINK_PORT@|$SINK_PORT|g" -e "s|@TLS_VERIFY_PORT@|$TLS_VERIFY_PORT|g" \
      -e "s|@TLS_TRUST_PORT@|$TLS_TRUST_PORT|g" -e "s|@TLS_BROKEN_PORT@|$TLS_BROKEN_PORT|g" \
      -e "s|@MX_PORT@|$MX_PORT|g" -e "s|@SUBMISSION_PORT@|$SUBMISSION_PORT|g" "$1" > "$2"
}

prepare_work() {
  rm -rf "$WORK"
  mkdir -p "$WORK/spool" "$WORK/conf" "$WORK/log"
  "$PY" "$mta/pki.py" "$WORK/pki"
  render "$here/sessions-conf/exim4.conf.in" "$CONF_FILE"
  render "$here/sessions-conf/routes.in" "$WORK/conf/routes"
  cp "$here/sessions-conf/transports" "$WORK/conf/"
  chown -R "$EXIM_USER:$EXIM_USER" "$WORK/spool" "$WORK/log"
  chmod 755 "$WORK" "$WORK/log"
  exim4 -bV >/dev/null 2>&1 || die "exim4 rejects the rendered configuration ($CONF_FILE): $(exim4 -bV 2>&1 | tail -3)"
  rm -f "$WORK"/log/*
}

pids=()
start_helpers() {
  "$PY" "$mta/sink.py" --port "$SINK_PORT" --host 127.0.0.1 --host ::1 \
      --listen "$TLS_VERIFY_PORT=tls" --listen "$TLS_TRUST_PORT=tls" --listen "$TLS_BROKEN_PORT=tlsbroken" \
      --tls-cert "$WORK/pki/sink.crt" --tls-key "$WORK/pki/sink.key" \
      --journal "$WORK/sink.jsonl" > "$WORK/sink.out" 2>&1 &
  pids+=($!)
  wait_tcp "$SINK_PORT" "$TLS_VERIFY_PORT"
}

stop_helpers() {
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

start_exim() {
  exim4 -bd -oP "$WORK/exim.pid"
  # Not wait_tcp: a probe connection would be a session in the capture.
  local i
  for i in $(seq 100); do
    grep -q "daemon started" "$WORK/log/mainlog" 2>/dev/null && return 0
    sleep 0.1
  done
  die "exim4 -bd did not log 'daemon started'"
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
  mountpoint -q "$WORK/ro-spool" 2>/dev/null && umount "$WORK/ro-spool"
  stop_exim
  stop_helpers
  stop_exporters
  restore_etc
  [ "$keep_work" = 1 ] || rm -rf "$WORK"
  pkg_snapshot_restore
}
trap cleanup EXIT

pkg_snapshot_begin
[ "$install" = 1 ] && install_packages
backup_etc
prepare_work
start_helpers
if [ -n "$exporter" ]; then
  start_queue_exporter spool --log.path "$WORK/log/mainlog" --log.from-beginning --queue.spool "exim=$WORK/spool"
fi
start_exim
log "driving the session scenarios (sessions.py)"
checks=()
check() {
  local name=$1; shift
  if "$@"; then checks+=("$name=1"); else checks+=("$name=0"); fi
}
check "scenarios and queue filled" "$PY" "$here/sessions.py" --phase scenarios --log "$WORK/log/mainlog" \
    --journal "$WORK/sink.jsonl" --pki "$WORK/pki" --password "$PASSWORD" --expected-out "$WORK/driver.json" \
    --mx-port "$MX_PORT" --submission-port "$SUBMISSION_PORT"
cp "$WORK/log/mainlog" "$WORK/capture.log"
"$PY" "$mta/families.py" --mta exim "$WORK/capture.log" --out "$WORK/sessions.families.json"
queue_args=()
if [ -n "$exporter" ]; then
  queue_args=(--exporter "spool=$(cat "$WORK/spool.addr")")
  # The sidecar case: the spool mounted read-only.
  mkdir -p "$WORK/ro-spool"
  if mount --bind "$WORK/spool" "$WORK/ro-spool" && mount -o remount,ro,bind "$WORK/ro-spool"; then
    : > "$WORK/empty.log"
    start_queue_exporter ro --log.path "$WORK/empty.log" --queue.spool "exim=$WORK/ro-spool"
    queue_args+=(--exporter "read-only=$(cat "$WORK/ro.addr")")
  else
    log "cannot bind-mount the spool read-only here"
    checks+=("read-only mount of the spool=0")
  fi
fi
check "log agrees with the driver; exporter queue = exim -bpc/-bp" "$PY" "$here/sessions.py" --phase queue \
    --log "$WORK/capture.log" --journal "$WORK/sink.jsonl" --pki "$WORK/pki" --password "$PASSWORD" \
    --families "$WORK/sessions.families.json" --expected-in "$WORK/driver.json" \
    --mx-port "$MX_PORT" --submission-port "$SUBMISSION_PORT" "${queue_args[@]}"
if [ -n "$exporter" ]; then
  check "exporter families = the log's" "$PY" "$mta/families_check.py" --url "http://$(cat "$WORK/spool.addr")/metrics" \
      --log "$WORK/log/mainlog" --expected "$WORK/sessions.families.json" --name "exim sessions"
fi
failed=0
for c in "${checks[@]}"; do [ "${c##*=}" = 1 ] || failed=1; done
if [ -n "$results_dir" ]; then
  mkdir -p "$results_dir"
  "$PY" - "$results_dir/exim-sessions.json" "${checks[@]}" <<'PYEOF'
import json, sys
checks = [{"check": c.rsplit("=", 1)[0], "pass": c.endswith("=1")} for c in sys.argv[2:]]
json.dump({"name": "exim sessions+queue", "pass": all(c["pass"] for c in checks), "checks": checks},
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
