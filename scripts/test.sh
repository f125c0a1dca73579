#!/usr/bin/env bash
# The whole test suite, as the README says: installs what it needs when it is
# missing, then builds, lints and tests everything. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustc_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "$rustc_minor" -lt 95 ]; then
  echo "vakt needs Rust 1.95 or newer (wasmtime 48); found $(rustc --version)" >&2
  exit 1
fi
# RUSTUP_AUTO_INSTALL is off on these machines: add the plugin target ourselves.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

step "test servers (on loopback only, started by the tests themselves)"
# The mail plugin is tested against a real SMTP server: Debian's aiosmtpd,
# run with the system Python (a pyenv `python3` on PATH may not see it).
# The STARTTLS test makes its certificate with the openssl command.
if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || ! command -v openssl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-aiosmtpd openssl >/dev/null
fi
export VAKT_TEST_PYTHON=/usr/bin/python3
# Ticketing and identity systems, from Debian and PyPI; each script is a fast
# no-op when already installed. The tests start the servers themselves
# (`scripts/servers/NAME.sh start`, idempotent, loopback only).
for server in redmine request-tracker scim; do
  scripts/servers/$server.sh install
done

step "format"
cargo fmt --all -- --check

step "build"
cargo build --workspace --all-targets --locked

step "plugins for wasm32-wasip2"
./plugins/build.sh

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "example workflows: validation and scenarios on virtual time"
cargo run --quiet --locked -- validate workflows/
cargo run --quiet --locked -- test workflows/

step "tests"
cargo test --workspace --locked
