#!/usr/bin/env bash
# Check a captured Postfix log against its expected.json with hand-written
# grep/awk rules (independent of drive.py's table and of any exporter).
#
#   bash tests/mta/postfix/check.sh LOG EXPECTED.json
#
# 1. Simple totals by grep: status= lines per status, reject lines,
#    reject_warning lines, status=expired lines.
# 2. Every reply line classified by check.awk into
#    "direction phase code enhanced status", counted, and compared with the
#    "replies" rows of expected.json.
set -euo pipefail
log=$1
expected=$2
here=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
fail=0

want() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))' "$expected" "$1"; }
count() { grep -E -c -- "$1" "$log" || true; }

check_total() {  # name got want
  if [ "$2" = "$3" ]; then printf 'ok   %-28s %s\n' "$1" "$2"
  else printf 'FAIL %-28s log=%s expected=%s\n' "$1" "$2" "$3"; fail=1; fi
}

for s in sent bounced deliverable undeliverable; do
  check_total "status=$s lines" "$(count ", status=$s \(")" "$(want "deliveries['$s']")"
done
check_total "status=deferred|SOFTBOUNCE" "$(count ', status=(deferred|SOFTBOUNCE) \(')" "$(want "deliveries['deferred']")"
check_total "status=expired lines" "$(count ', status=expired, ')" "$(want "deliveries['expired']")"
check_total "reject lines" "$(count ': (milter-)?reject: ')" "$(want "deliveries['rejected']")"
check_total "reject_warning lines" "$(count ': reject_warning: ')" "$(want "reject_warnings")"

got=$(awk -f "$here/check.awk" "$log" | sort | uniq -c | awk '{print $2, $3, $4, $5, $6, $1}')
exp=$("$PY" -c '
import json, sys
for r in json.load(open(sys.argv[1]))["replies"]:
    print(r["direction"], r["phase"], r["code"], r["enhanced"], r["status"], r["count"])
' "$expected" | sort)
got=$(printf '%s\n' "$got" | sort)
if [ "$got" = "$exp" ]; then
  printf 'ok   %-28s %s rows, %s replies\n' "reply rows (check.awk)" "$(printf '%s\n' "$exp" | wc -l)" \
    "$(printf '%s\n' "$exp" | awk '{n += $6} END {print n}')"
else
  echo "FAIL reply rows (check.awk) differ: < log   > expected"
  diff <(printf '%s\n' "$got") <(printf '%s\n' "$exp") || true
  fail=1
fi
exit $fail
