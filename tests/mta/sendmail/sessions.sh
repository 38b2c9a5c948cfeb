#!/usr/bin/env bash
# Sendmail 8.17 sessions, STARTTLS, SASL, milter discard and quarantine, and
# a real queue: install, configure a loopback-only test bed
# (sessions-conf/), drive sessions.py through a private rsyslogd, check the
# captured log against what the driver did, then compare mta_exporter's
# queue families with `mailq`. Restores the machine and purges what it
# installed.
#
#   bash tests/mta/sendmail/sessions.sh [--no-install] [--out DIR] [--keep-work]
#                                       [--exporter BIN [--results-dir DIR]]
#
# Outputs (default --out = tests/fixtures/sendmail): sessions.log and
# sessions.families.json (see tests/mta/README.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mta=$(cd "$here/.." && pwd)
repo=$(cd "$mta/../.." && pwd)
MTA_LOG_TAG=sendmail-sessions
# shellcheck source=../lib.sh
. "$mta/lib.sh"

sessions_options sendmail Sendmail "$@"
cd /

SINK_PORT=2525
TLS_VERIFY_PORT=2534
TLS_BROKEN_PORT=2536
MX_PORT=10025
SUBMISSION_PORT=10587
MILTER_PORT=10030

WORK=/var/lib/mta-test-sendmail-sessions
HOSTS_BACKUP=/var/lib/mta-test-sendmail-sessions.hosts
SASL_BACKUP=/var/lib/mta-test-sendmail-sessions.sasl
PY=${PYTHON:-python3}
CF=$WORK/sendmail.cf

install_packages() {
  purge_other_mtas sendmail
  apt_install sendmail-bin sendmail-cf m4 swaks python3 rsyslog libsasl2-modules sasl2-bin openssl
}

qualify_hostname() {
  local h
  h=$(hostname)
  case "$(hostname -f 2>/dev/null || true)" in *.*) return 0 ;; esac
  [ -e "$HOSTS_BACKUP" ] || cp -p /etc/hosts "$HOSTS_BACKUP"
  { echo "127.0.1.1 $h.mta-test.example $h"; cat "$HOSTS_BACKUP"; } > /etc/hosts
}

restore_hosts() {
  if [ -e "$HOSTS_BACKUP" ]; then cat "$HOSTS_BACKUP" > /etc/hosts; rm -f "$HOSTS_BACKUP"; fi
}

backup_sasl() {
  mkdir -p "$SASL_BACKUP"
  for f in /etc/sasldb2 /etc/sasl2/Sendmail.conf; do
    b=$SASL_BACKUP/$(echo "$f" | tr / _)
    if [ -e "$f" ]; then cp -p "$f" "$b"; else : > "$b.absent"; fi
  done
}

restore_sasl() {
  [ -d "$SASL_BACKUP" ] || return 0
  for f in /etc/sasldb2 /etc/sasl2/Sendmail.conf; do
    b=$SASL_BACKUP/$(echo "$f" | tr / _)
    if [ -e "$b" ]; then cp -p "$b" "$f"; elif [ -e "$b.absent" ]; then rm -f "$f"; fi
  done
  rm -rf "$SASL_BACKUP"
}

render() {  # render SRC DST
  sed -e "s|@WORK@|$WORK|g" -e "s|@MX_PORT@|$MX_PORT|g" -e "s|@SUBMISSION_PORT@|$SUBMISSION_PORT|g" \
      -e "s|@MILTER_PORT@|$MILTER_PORT|g" -e "s|@SINK_PORT@|$SINK_PORT|g" \
      -e "s|@TLS_VERIFY_PORT@|$TLS_VERIFY_PORT|g" -e "s|@TLS_BROKEN_PORT@|$TLS_BROKEN_PORT|g" "$1" > "$2"
}

prepare_work() {
  rm -rf "$WORK"
  mkdir -p "$WORK/mqueue" "$WORK/tls"
  chmod 755 "$WORK"
  chmod 700 "$WORK/mqueue"
  "$PY" "$mta/pki.py" "$WORK/pki"
  # Sendmail refuses keys others may read, and wants hashed CA names.
  install -m 0600 "$WORK/pki/server.key" "$WORK/tls/server.key"
  install -m 0644 "$WORK/pki/server.crt" "$WORK/pki/ca.crt" "$WORK/tls/"
  openssl rehash "$WORK/tls" >/dev/null 2>&1 || c_rehash "$WORK/tls" >/dev/null
  chmod 700 "$WORK/tls"
  render "$here/sessions-conf/sendmail.mc.in" "$WORK/sendmail.mc"
  m4 "$WORK/sendmail.mc" > "$CF"
  local f
  for f in aliases local-host-names service.switch hosts; do render "$here/conf/$f" "$WORK/$f"; done
  for f in access mailertable; do cp "$here/sessions-conf/$f" "$WORK/$f"; makemap hash "$WORK/$f" < "$WORK/$f"; done
  /usr/sbin/sendmail -C "$CF" -bi >/dev/null
  mkdir -p /etc/sasl2
  cp "$here/sessions-conf/Sendmail.conf" /etc/sasl2/Sendmail.conf
  rm -f /etc/sasldb2
  printf 'correct-horse-sessions\n' | saslpasswd2 -f /etc/sasldb2 -c -p -u mx1.example.test alice
  chmod 600 /etc/sasldb2
}

pids=()
start_helpers() {
  "$PY" "$mta/sink.py" --port "$SINK_PORT" --host 127.0.0.1 --host ::1 \
      --listen "$TLS_VERIFY_PORT=tls" --listen "$TLS_BROKEN_PORT=tlsbroken" \
      --tls-cert "$WORK/pki/sink.crt" --tls-key "$WORK/pki/sink.key" \
      --journal "$WORK/sink.jsonl" > "$WORK/sink.out" 2>&1 &
  pids+=($!)
  "$PY" "$mta/milter.py" --port "$MILTER_PORT" --journal "$WORK/milter.jsonl" > "$WORK/milter.out" 2>&1 &
  pids+=($!)
  wait_tcp "$SINK_PORT" "$TLS_VERIFY_PORT" "$MILTER_PORT"
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

start_sendmail() {
  /usr/sbin/sendmail -C "$CF" -bd
  local i
  for i in $(seq 100); do [ -s "$WORK/sendmail.pid" ] && break; sleep 0.1; done
  # (written once its sockets listen; no wait_tcp: a probe would be a session in the capture)
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
  stop_exporters
  stop_private_rsyslogd "$WORK"
  restore_hosts
  restore_sasl
  [ "$keep_work" = 1 ] || rm -rf "$WORK"
  pkg_snapshot_restore
}
trap cleanup EXIT

pkg_snapshot_begin
qualify_hostname  # before the install: its configuration step waits a minute for an FQDN otherwise
[ "$install" = 1 ] && install_packages
backup_sasl
prepare_work
logfile=$WORK/syslog.log
if [ -n "$exporter" ]; then
  start_queue_exporter queue --log.path "$logfile" --log.from-beginning --queue.spool "sendmail=$WORK/mqueue"
fi
start_private_rsyslogd "$WORK" "$logfile"
start_helpers
start_sendmail
log "driving the session scenarios (sessions.py)"
checks=()
check() {
  local name=$1; shift
  if "$@"; then checks+=("$name=1"); else checks+=("$name=0"); fi
}
check "scenarios and queue filled" "$PY" "$here/sessions.py" --phase scenarios --log "$logfile" \
    --journal "$WORK/sink.jsonl" --pki "$WORK/pki" --cf "$CF" --expected-out "$WORK/driver.json" \
    --mx-port "$MX_PORT" --submission-port "$SUBMISSION_PORT"
cp "$logfile" "$WORK/capture.log"
"$PY" "$mta/families.py" --mta sendmail "$WORK/capture.log" --out "$WORK/sessions.families.json"
queue_args=()
[ -n "$exporter" ] && queue_args=(--exporter "queue=$(cat "$WORK/queue.addr")")
check "log agrees with the driver; exporter queue = mailq" "$PY" "$here/sessions.py" --phase queue \
    --log "$WORK/capture.log" --journal "$WORK/sink.jsonl" --pki "$WORK/pki" --cf "$CF" \
    --families "$WORK/sessions.families.json" --expected-in "$WORK/driver.json" \
    --mx-port "$MX_PORT" --submission-port "$SUBMISSION_PORT" "${queue_args[@]}"
if [ -n "$exporter" ]; then
  check "exporter families = the log's" "$PY" "$mta/families_check.py" --url "http://$(cat "$WORK/queue.addr")/metrics" \
      --log "$logfile" --expected "$WORK/sessions.families.json" --name "sendmail sessions"
fi
failed=0
for c in "${checks[@]}"; do [ "${c##*=}" = 1 ] || failed=1; done
if [ -n "$results_dir" ]; then
  mkdir -p "$results_dir"
  "$PY" - "$results_dir/sendmail-sessions.json" "${checks[@]}" <<'PYEOF'
import json, sys
checks = [{"check": c.rsplit("=", 1)[0], "pass": c.endswith("=1")} for c in sys.argv[2:]]
json.dump({"name": "sendmail sessions+queue", "pass": all(c["pass"] for c in checks), "checks": checks},
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
