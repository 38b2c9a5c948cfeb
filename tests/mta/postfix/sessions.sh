#!/usr/bin/env bash
# Postfix 3.7 sessions, TLS, SASL, postscreen, filters, notifications, and a
# real queue: install, configure a loopback-only test bed, drive
# sessions.py, capture the log, check it against what the driver did, then
# compare mta_exporter's queue families with `postqueue -j`. Restores the
# machine and purges what it installed.
#
#   bash tests/mta/postfix/sessions.sh [--no-install] [--out DIR] [--keep-work]
#                                      [--exporter BIN [--results-dir DIR]]
#
# Outputs (default --out = tests/fixtures/postfix):
#   sessions.log              the captured maillog_file
#   sessions.families.json    tests/mta/families.py's reading of it (the
#                             expected values of tests/activity.rs), checked
#                             against the driver's own counts
# With --exporter BIN (what tests/mta/e2e.sh runs): the release exporter
# follows the log from its beginning and reads the queue at every scrape
# (--queue.spool postfix=/var/spool/postfix, through showq); a second one
# reads the queue directories; both must agree with postqueue -j, and the
# first one's families with sessions.families.json. DIR/postfix-sessions.json
# gets the summary for e2e.sh's table.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mta=$(cd "$here/.." && pwd)
repo=$(cd "$mta/../.." && pwd)
MTA_LOG_TAG=postfix-sessions
# shellcheck source=../lib.sh
. "$mta/lib.sh"

sessions_options postfix Postfix "$@"

SINK_PORT=2525
CLOSED_PORT=$((SINK_PORT + 8))
TLS_VERIFY_PORT=2534
TLS_TRUST_PORT=2535
TLS_BROKEN_PORT=2536
SUBMISSION_PORT=10587
MX_PORT=10025
POSTSCREEN_PORT=10026
EARLY_PORT=10027
CONNECT_PORT=10028
MILTER_SMTPD_PORT=10029
MILTER_PORT=10030
AUTH_PORT=10041
TLSMX_PORT=10042
PS_PORT=10043
PS_DEEP_PORT=10044
PS_DNSBL_PORT=10045
PS_ALLOW_PORT=10046
DNS_ADDR=127.0.0.153
LIFETIME=1h
PASSWORD=correct-horse-sessions

WORK=/var/tmp/mta-postfix-sessions
CONF=/etc/postfix/mta-test
BACKUP=/var/tmp/mta-postfix-sessions-etc-backup
SPOOL=/var/spool/postfix
PY=${PYTHON:-python3}

install_packages() {
  purge_other_mtas postfix
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt_install postfix swaks libsasl2-modules sasl2-bin python3 openssl
}

backup_etc() {
  mkdir -p "$BACKUP"
  for f in /etc/postfix/main.cf /etc/postfix/master.cf "$SPOOL/etc/resolv.conf" /etc/sasldb2; do
    b=$BACKUP/$(echo "$f" | tr / _)
    if [ -e "$f" ] && [ ! -e "$b" ] && [ ! -e "$b.absent" ]; then cp -p "$f" "$b"
    elif [ ! -e "$f" ] && [ ! -e "$b" ]; then : > "$b.absent"; fi
  done
}

restore_etc() {
  for f in /etc/postfix/main.cf /etc/postfix/master.cf "$SPOOL/etc/resolv.conf" /etc/sasldb2; do
    b=$BACKUP/$(echo "$f" | tr / _)
    if [ -e "$b" ]; then cp -p "$b" "$f"
    elif [ -e "$b.absent" ]; then rm -f "$f"; fi
  done
  rm -rf "$BACKUP" "$CONF"
}

render() {  # render SRC DST
  sed -e "s|@CONF@|$CONF|g" -e "s|@WORK@|$WORK|g" -e "s|@MAILLOG_FILE@|$WORK/maillog|g" \
      -e "s|@LIFETIME@|$LIFETIME|g" \
      -e "s|@SINK_PORT@|$SINK_PORT|g" -e "s|@SINK_GREET554@|$((SINK_PORT + 1))|g" \
      -e "s|@SINK_GREET421@|$((SINK_PORT + 2))|g" -e "s|@SINK_AUTH535@|$((SINK_PORT + 3))|g" \
      -e "s|@SINK_HELO550@|$((SINK_PORT + 4))|g" -e "s|@SINK_FILTER@|$((SINK_PORT + 5))|g" \
      -e "s|@SINK_ACCEPT@|$((SINK_PORT + 6))|g" -e "s|@CLOSED_PORT@|$CLOSED_PORT|g" \
      -e "s|@SUBMISSION_PORT@|$SUBMISSION_PORT|g" -e "s|@MX_PORT@|$MX_PORT|g" \
      -e "s|@POSTSCREEN_PORT@|$POSTSCREEN_PORT|g" -e "s|@EARLY_PORT@|$EARLY_PORT|g" \
      -e "s|@CONNECT_PORT@|$CONNECT_PORT|g" -e "s|@MILTER_SMTPD_PORT@|$MILTER_SMTPD_PORT|g" \
      -e "s|@MILTER_PORT@|$MILTER_PORT|g" -e "s|@AUTH_PORT@|$AUTH_PORT|g" -e "s|@TLSMX_PORT@|$TLSMX_PORT|g" \
      -e "s|@PS_PORT@|$PS_PORT|g" -e "s|@PS_DEEP_PORT@|$PS_DEEP_PORT|g" -e "s|@PS_DNSBL_PORT@|$PS_DNSBL_PORT|g" \
      -e "s|@PS_ALLOW_PORT@|$PS_ALLOW_PORT|g" -e "s|@TLS_VERIFY_PORT@|$TLS_VERIFY_PORT|g" \
      -e "s|@TLS_TRUST_PORT@|$TLS_TRUST_PORT|g" -e "s|@TLS_BROKEN_PORT@|$TLS_BROKEN_PORT|g" "$1" > "$2"
}

configure() {
  mkdir -p "$CONF/sasl"
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
  for f in "$here"/sessions-conf/*; do
    b=$(basename "$f")
    case "$b" in
      master.cf.add.in) render "$f" "$WORK/master.cf.add"; cat "$WORK/master.cf.add" >> /etc/postfix/master.cf ;;
      main.cf.add.in)
        render "$f" "$WORK/main.cf.add"
        grep -E '^[A-Za-z0-9_]+ = ' "$WORK/main.cf.add" | while read -r line; do postconf -e "$line"; done ;;
      smtpd.conf.in) render "$f" "$CONF/sasl/smtpd.conf" ;;
      *.in) render "$f" "$CONF/${b%.in}" ;;
      *) cp "$f" "$CONF/$b" ;;
    esac
  done
  # dnsblog runs chrooted, so it resolves through the spool's own
  # resolv.conf: the test DNSBL server, not the machine's resolver.
  sed -i -E 's/^(dnsblog +unix +- +- +)n /\1y /' /etc/postfix/master.cf
  mkdir -p "$SPOOL/etc"
  echo "nameserver $DNS_ADDR" > "$SPOOL/etc/resolv.conf"
  # Cyrus reads the default sasldb (its sasldb_path option was not honoured
  # through cyrus_sasl_config_path here); backed up and restored around the run.
  rm -f /etc/sasldb2
  printf '%s\n' "$PASSWORD" | saslpasswd2 -f /etc/sasldb2 -c -p -u example.test alice
  chown root:postfix /etc/sasldb2
  chmod 640 /etc/sasldb2
  postfix check >/dev/null
}

prepare_work() {
  rm -rf "$WORK"
  mkdir -p "$WORK/spool" "$WORK/vmail" "$WORK/files"
  chmod 1777 "$WORK/spool"
  chown nobody:nogroup "$WORK/vmail" "$WORK/files"
  chmod 755 "$WORK"
  "$PY" "$mta/pki.py" "$WORK/pki"
}

pids=()
start_helpers() {
  "$PY" "$mta/sink.py" --port "$SINK_PORT" --host 127.0.0.1 --host ::1 \
      --listen "$TLS_VERIFY_PORT=tls" --listen "$TLS_TRUST_PORT=tls" --listen "$TLS_BROKEN_PORT=tlsbroken" \
      --tls-cert "$WORK/pki/sink.crt" --tls-key "$WORK/pki/sink.key" \
      --journal "$WORK/sink.jsonl" > "$WORK/sink.out" 2>&1 &
  pids+=($!)
  "$PY" "$mta/milter.py" --port "$MILTER_PORT" --journal "$WORK/milter.jsonl" > "$WORK/milter.out" 2>&1 &
  pids+=($!)
  "$PY" "$mta/dnsbl.py" --listen "$DNS_ADDR" --zone bl.test --zone bl2.test > "$WORK/dnsbl.out" 2>&1 &
  pids+=($!)
  wait_tcp "$SINK_PORT" "$TLS_VERIFY_PORT" "$MILTER_PORT"
}

stop_helpers() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  pids=()
}

exporters=()
start_queue_exporter() {  # NAME ARGS...: an exporter on a free port, address in $WORK/NAME.addr
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

postfix_running() { postfix status >/dev/null 2>&1; }
stop_postfix() {
  if postfix_running; then postfix stop >/dev/null 2>&1 || true; fi
  for _ in $(seq 100); do postfix_running || break; sleep 0.1; done
}

cleanup() {
  set +e
  mountpoint -q "$WORK/ro-spool" 2>/dev/null && umount "$WORK/ro-spool"
  postsuper -d ALL >/dev/null 2>&1
  postsuper -d ALL hold >/dev/null 2>&1
  stop_postfix
  stop_helpers
  stop_exporters
  rm -f /var/lib/postfix/mta_test_psc_cache*.db
  restore_etc
  [ "$keep_work" = 1 ] || rm -rf "$WORK"
  pkg_snapshot_restore
}
trap cleanup EXIT

pkg_snapshot_begin
[ "$install" = 1 ] && install_packages
backup_etc
stop_postfix
prepare_work
configure
postsuper -d ALL >/dev/null 2>&1 || true
rm -f /var/lib/postfix/mta_test_psc_cache*.db
start_helpers
if [ -n "$exporter" ]; then
  start_queue_exporter showq --log.path "$WORK/maillog" --log.from-beginning --queue.spool "postfix=$SPOOL"
fi
log "postfix start; driving the session scenarios (sessions.py)"
postfix start >/dev/null 2>&1
for _ in $(seq 100); do [ -s "$WORK/maillog" ] && break; sleep 0.1; done
ports=(--submission-port "$SUBMISSION_PORT" --mx-port "$MX_PORT" --auth-port "$AUTH_PORT" --tlsmx-port "$TLSMX_PORT"
       --ps-port "$PS_PORT" --ps-allow-port "$PS_ALLOW_PORT" --ps-deep-port "$PS_DEEP_PORT"
       --ps-dnsbl-port "$PS_DNSBL_PORT" --milter-smtpd-port "$MILTER_SMTPD_PORT" --dns-port 53)
checks=()
check() {  # check NAME COMMAND...: run a check, remember its outcome for the summary
  local name=$1; shift
  if "$@"; then checks+=("$name=1"); else checks+=("$name=0"); fi
}
check "scenarios and queue filled" "$PY" "$here/sessions.py" --phase scenarios --log "$WORK/maillog" \
    --journal "$WORK/sink.jsonl" --pki "$WORK/pki" --password "$PASSWORD" --expected-out "$WORK/driver.json" "${ports[@]}"
cp "$WORK/maillog" "$WORK/capture.log"
"$PY" "$mta/families.py" --mta postfix "$WORK/capture.log" --out "$WORK/sessions.families.json"
queue_args=()
if [ -n "$exporter" ]; then
  printf 'queues:\n  spools:\n    - mta: postfix\n      path: %s\n      method: directories\n' "$SPOOL" > "$WORK/dirs.yml"
  : > "$WORK/empty.log"
  start_queue_exporter directories --config.file "$WORK/dirs.yml" --log.path "$WORK/empty.log"
  queue_args=(--exporter "showq=$(cat "$WORK/showq.addr")" --exporter "directories=$(cat "$WORK/directories.addr")")
  # The sidecar case: the spool mounted read-only, read both ways.
  mkdir -p "$WORK/ro-spool"
  if mount --bind "$SPOOL" "$WORK/ro-spool" && mount -o remount,ro,bind "$WORK/ro-spool"; then
    for method in showq directories; do
      printf 'queues:\n  spools:\n    - mta: postfix\n      path: %s\n      method: %s\n' "$WORK/ro-spool" "$method" \
          > "$WORK/ro-$method.yml"
      start_queue_exporter "ro-$method" --config.file "$WORK/ro-$method.yml" --log.path "$WORK/empty.log"
      queue_args+=(--exporter "read-only-$method=$(cat "$WORK/ro-$method.addr")")
    done
  else
    log "cannot bind-mount the spool read-only here"
    checks+=("read-only mount of the spool=0")
  fi
fi
check "log agrees with the driver; exporter queue = postqueue -j" "$PY" "$here/sessions.py" --phase queue \
    --log "$WORK/capture.log" --journal "$WORK/sink.jsonl" --pki "$WORK/pki" --password "$PASSWORD" \
    --families "$WORK/sessions.families.json" --expected-in "$WORK/driver.json" "${queue_args[@]}"
if [ -n "$exporter" ]; then
  check "exporter families = the log's" "$PY" "$mta/families_check.py" --url "http://$(cat "$WORK/showq.addr")/metrics" \
      --log "$WORK/maillog" --expected "$WORK/sessions.families.json" --name "postfix sessions"
fi
failed=0
for c in "${checks[@]}"; do [ "${c##*=}" = 1 ] || failed=1; done
if [ -n "$results_dir" ]; then
  mkdir -p "$results_dir"
  "$PY" - "$results_dir/postfix-sessions.json" "${checks[@]}" <<'PYEOF'
import json, sys
checks = [{"check": c.rsplit("=", 1)[0], "pass": c.endswith("=1")} for c in sys.argv[2:]]
json.dump({"name": "postfix sessions+queue", "pass": all(c["pass"] for c in checks), "checks": checks},
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
