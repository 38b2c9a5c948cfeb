#!/bin/sh
# pipe(8) test command: recipient "exit-N" exits with status N, anything else 0.
cat >/dev/null
case "$1" in
  exit-*) echo "pipe test: exiting with ${1#exit-}"; exit "${1#exit-}" ;;
esac
exit 0
