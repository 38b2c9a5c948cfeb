#!/usr/bin/env bash
# Builds the fuzz corpora under fuzz/corpus/<target>/ from the project's own
# files: the MTA fixtures in tests/fixtures (cut into pieces of 20 lines, so
# every seed is small), the config files in config/, and the hand-written
# seeds in fuzz/seeds/<target>/. Never from ../shared/corpus (mixed licences).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=..
add_logs() { # target, files…
  local target=$1
  shift
  mkdir -p "corpus/$target"
  for file in "$@"; do
    split -l 20 -d -a 3 "$file" "corpus/$target/$(basename "$(dirname "$file")")-$(basename "$file")-"
  done
}
LOGS=("$ROOT"/tests/fixtures/*/*.log "$ROOT"/tests/fixtures/*/*.rejectlog "$ROOT"/tests/fixtures/report.log "$ROOT"/config/sample/postfix.log)
for target in envelope line_parser parse_other framing decode syslog_framing; do
  add_logs "$target" "${LOGS[@]}"
done
add_logs decode "$ROOT"/tests/fixtures/*/*.jsonl
add_logs parse_exim "$ROOT"/tests/fixtures/exim/*.log "$ROOT"/tests/fixtures/exim/*.rejectlog
add_logs parse_sendmail "$ROOT"/tests/fixtures/sendmail/*.log
add_logs parse_opensmtpd "$ROOT"/tests/fixtures/opensmtpd/*.log
# The Postfix target reads a program name on its first line.
mkdir -p corpus/parse_postfix
for file in "$ROOT"/tests/fixtures/postfix/*.log "$ROOT"/config/sample/postfix.log; do
  n=0
  while IFS= read -r line; do
    program=$(sed -nE 's/^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [^ ]+ ([^:[]+).*/\1/p' <<<"$line")
    message=$(sed -nE 's/^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [^ ]+ [^:]+: //p' <<<"$line")
    [[ -n $program ]] || continue
    printf '%s\n%s' "$program" "$message" >"corpus/parse_postfix/$(basename "$file")-$n"
    n=$((n + 1))
  done <"$file"
done
mkdir -p corpus/classify corpus/config corpus/web_config
grep -v "^#" "$ROOT"/tests/fixtures/causes.tsv | cut -f3 | split -l 20 -d -a 3 - corpus/classify/causes-tsv-
{ cat "$ROOT"/config/causes.yaml; printf '\0550 5.7.1 blocked\n'; } >corpus/classify/defaults
cp "$ROOT"/config/example.yaml corpus/config/
for seeds in seeds/*/; do
  target=$(basename "$seeds")
  mkdir -p "corpus/$target"
  cp "$seeds"* "corpus/$target/"
done
for dir in corpus/*/; do
  echo "$(basename "$dir"): $(find "$dir" -type f | wc -l) seeds"
done
