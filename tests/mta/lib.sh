# Shell helpers shared by tests/mta/<mta>/run.sh and tests/mta/e2e.sh
# (sourced, not executed). Bash only; every function prints what it does.
#
# Packages: the four MTAs conflict (each provides mail-transport-agent), so a
# run installs its MTA after purging any other one, and at the end purges
# exactly the packages that were not installed when the outermost script
# started (a dpkg snapshot). When e2e.sh runs several MTAs it owns the
# snapshot (MTA_PKG_SNAPSHOT) and the run.sh scripts leave packages alone.
#
# A package that was installed before the snapshot and conflicts with the MTA
# under test is purged only with MTA_ALLOW_PURGE=1 (it would not come back).

MTA_LOG_TAG=${MTA_LOG_TAG:-mta}
log() { printf '[%s %(%T)T] %s\n' "$MTA_LOG_TAG" -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Every package of each MTA family (what to purge before installing another).
declare -A MTA_FAMILY=(
  [postfix]="postfix postfix-pcre postfix-cdb postfix-lmdb"
  [exim]="exim4 exim4-base exim4-config exim4-daemon-light exim4-daemon-heavy"
  [sendmail]="sendmail sendmail-base sendmail-bin sendmail-cf sendmail-doc sensible-mda"
  [opensmtpd]="opensmtpd"
)

installed_packages() {
  dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 == "ii" {print $2}' | sort -u
}

pkg_installed() {
  dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'
}

# pkg_snapshot_begin: take the snapshot unless an outer script already did.
# Sets PKG_SNAPSHOT_OWNER=1 when this script must restore it.
PKG_SNAPSHOT_OWNER=0
pkg_snapshot_begin() {
  if [ -n "${MTA_PKG_SNAPSHOT:-}" ] && [ -s "$MTA_PKG_SNAPSHOT" ]; then
    return 0
  fi
  MTA_PKG_SNAPSHOT=$(mktemp /var/tmp/mta-pkgs.XXXXXX)
  export MTA_PKG_SNAPSHOT
  installed_packages > "$MTA_PKG_SNAPSHOT"
  PKG_SNAPSHOT_OWNER=1
}

# pkg_snapshot_restore: purge every package installed since the snapshot.
pkg_snapshot_restore() {
  [ "$PKG_SNAPSHOT_OWNER" = 1 ] || return 0
  local extra
  extra=$(comm -13 "$MTA_PKG_SNAPSHOT" <(installed_packages) | tr '\n' ' ')
  if [ -n "${extra// /}" ]; then
    log "purging what this run installed: $extra"
    # shellcheck disable=SC2086
    with_policy_rc_d env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $extra >/dev/null
  fi
  local gone
  gone=$(comm -23 "$MTA_PKG_SNAPSHOT" <(installed_packages) | tr '\n' ' ')
  [ -n "${gone// /}" ] && log "NOTE: installed before this run and purged by it (conflicting MTA): $gone"
  rm -f "$MTA_PKG_SNAPSHOT"
  PKG_SNAPSHOT_OWNER=0
}

# Keep maintainer scripts from starting daemons (we start them ourselves,
# with our configuration, and a started exim4/sendmail would hold port 25).
with_policy_rc_d() {
  local p=/usr/sbin/policy-rc.d created=0 rc=0
  if [ ! -e "$p" ]; then
    printf '#!/bin/sh\n# temporary, from mta_exporter tests/mta/lib.sh\nexit 101\n' > "$p"
    chmod 755 "$p"
    created=1
  fi
  "$@" || rc=$?
  [ "$created" = 1 ] && rm -f "$p"
  return "$rc"
}

apt_update_once() {
  [ "${MTA_APT_UPDATED:-0}" = 1 ] && return 0
  log "apt-get update"
  apt-get update -qq
  export MTA_APT_UPDATED=1
}

# apt_install PKG...: install what is missing (no recommends, no daemons started).
apt_install() {
  local need=() p
  for p in "$@"; do pkg_installed "$p" || need+=("$p"); done
  [ ${#need[@]} -eq 0 ] && return 0
  apt_update_once
  log "apt-get install ${need[*]}"
  with_policy_rc_d env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# purge_other_mtas MTA: purge every installed package of the other families,
# and any other package that provides mail-transport-agent.
purge_other_mtas() {
  local keep=$1 fam p victims=() preexisting=()
  for fam in "${!MTA_FAMILY[@]}"; do
    [ "$fam" = "$keep" ] && continue
    for p in ${MTA_FAMILY[$fam]}; do pkg_installed "$p" && victims+=("$p"); done
  done
  while read -r p; do
    case " ${MTA_FAMILY[$keep]} ${victims[*]} " in *" $p "*) ;; *) victims+=("$p") ;; esac
  done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' 2>/dev/null |
           awk '$1 == "ii" && /mail-transport-agent/ {print $2}')
  [ ${#victims[@]} -eq 0 ] && return 0
  for p in "${victims[@]}"; do
    grep -qx "$p" "$MTA_PKG_SNAPSHOT" && preexisting+=("$p")
  done
  if [ ${#preexisting[@]} -gt 0 ] && [ "${MTA_ALLOW_PURGE:-0}" != 1 ]; then
    die "${preexisting[*]} installed on this machine conflict with the $keep test bed; purge them first or rerun with MTA_ALLOW_PURGE=1 (they will not be reinstalled)"
  fi
  log "apt-get purge ${victims[*]} (conflicts with $keep)"
  with_policy_rc_d env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${victims[@]}" >/dev/null
}

# wait_tcp PORT...: until something listens on 127.0.0.1:PORT (10 s each).
wait_tcp() {
  local p i
  for p in "$@"; do
    for i in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
      [ "$i" = 100 ] && die "nothing listens on 127.0.0.1:$p"
      sleep 0.1
    done
  done
}

# A private rsyslogd owning /dev/log that writes mail.* to FILE in the
# traditional RFC 3164 file format. Refuses when /dev/log already exists.
start_private_rsyslogd() {  # start_private_rsyslogd WORKDIR FILE
  local dir=$1 file=$2
  [ -e /dev/log ] && die "/dev/log already exists: another syslog daemon is running (stop it, or use a machine without one)"
  cat > "$dir/rsyslog.conf" <<EOF
global(workDirectory="$dir")
module(load="imuxsock" SysSock.Name="/dev/log")
mail.*  action(type="omfile" file="$file" template="RSYSLOG_TraditionalFileFormat")
EOF
  log "starting a private rsyslogd: mail.* -> $file"
  rsyslogd -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid"
  local i
  for i in $(seq 50); do [ -S /dev/log ] && return 0; sleep 0.1; done
  die "rsyslogd did not create /dev/log"
}

stop_private_rsyslogd() {  # stop_private_rsyslogd WORKDIR
  local dir=$1 i
  [ -e "$dir/rsyslogd.pid" ] || return 0
  kill "$(cat "$dir/rsyslogd.pid")" 2>/dev/null || true
  for i in $(seq 50); do [ -e "$dir/rsyslogd.pid" ] || break; sleep 0.1; done
  rm -f "$dir/rsyslogd.pid" /dev/log
}

# The exporter under test (release binary), following LOG from its beginning.
# Started before the MTA writes LOG's first line; its stderr goes to OUT, where
# e2e_check.py finds the listening address.
EXPORTER_PID=
start_exporter() {  # start_exporter BIN LOG OUT
  log "starting $1 --log.path $2 --log.from-beginning (listening on a free loopback port)"
  "$1" --web.listen-address 127.0.0.1:0 --log.path "$2" --log.from-beginning --log.level debug \
       > "$3" 2>&1 &
  EXPORTER_PID=$!
}

stop_exporter() {
  [ -n "$EXPORTER_PID" ] || return 0
  kill "$EXPORTER_PID" 2>/dev/null || true
  wait "$EXPORTER_PID" 2>/dev/null || true
  EXPORTER_PID=
}

# The options every sessions bed takes (each sessions.sh's header says what
# they do): sets install, out, keep_work, exporter and results_dir. Needs
# $repo. Usage: sessions_options <fixture dir name> <MTA name> "$@"
sessions_options() {
  local name=$1 display=$2
  shift 2
  install=1
  out="$repo/tests/fixtures/$name"
  keep_work=0
  exporter=
  results_dir=
  while [ $# -gt 0 ]; do
    case "$1" in
      --no-install) install=0; shift ;;
      --out) out=$(realpath -m "$2"); shift 2 ;;
      --keep-work) keep_work=1; shift ;;
      --exporter) exporter=$(realpath "$2"); shift 2 ;;
      --results-dir) results_dir=$(realpath -m "$2"); shift 2 ;;
      -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
      *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
  done
  [ "$(id -u)" = 0 ] || { echo "sessions.sh must run as root (it installs and starts $display)" >&2; exit 2; }
}
