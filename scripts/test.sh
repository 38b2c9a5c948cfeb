#!/usr/bin/env bash
# The whole test suite, in one command, on a fresh machine:
#   scripts/test.sh
# Run as root (as CI does), it first installs the system packages the tests
# need; as another user it expects them to be there already.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=(python3)
missing=()
for pkg in "${need_packages[@]}"; do
  command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
  else
    echo "scripts/test.sh: missing ${missing[*]}; install them or run as root" >&2
    exit 1
  fi
fi

echo "== cargo test"
cargo test --locked --all-targets

# Real MTAs end to end (tests/mta/e2e.sh): installs each MTA from Debian's
# packages, drives it, asserts the release exporter's /metrics exactly, and
# purges what it installed. Needs root, so it runs when this script does (CI).
# Only MTAs whose parser exists on this branch are listed; extend the list
# when a parser lands (the suite also knows: exim sendmail opensmtpd).
E2E_MTAS=(postfix)
if [[ $(id -u) -eq 0 ]]; then
  echo "== real-MTA end-to-end suite: ${E2E_MTAS[*]} (tests/mta/e2e.sh)"
  tests/mta/e2e.sh "${E2E_MTAS[@]}"
else
  echo "== real-MTA end-to-end suite NOT run: it needs root (sudo tests/mta/e2e.sh ${E2E_MTAS[*]})"
fi
