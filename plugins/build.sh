#!/usr/bin/env bash
# Builds every vakt plugin for wasm32-wasip2 in release into
# $CARGO_TARGET_DIR (default: target/)/wasm32-wasip2/release/*.wasm.
#
# Idempotent and fast when up to date (one cargo invocation; cargo's own
# fingerprints decide what to rebuild). Prints the output directory last.
#
# Size settings for the wasm build (opt-level "s", thin LTO, one codegen
# unit, no debug info, stripped) are passed as CARGO_PROFILE_RELEASE_*
# variables so the daemon's native release profile stays as it is. Panics
# abort on wasm32 (the target's default), so a panicking plugin traps and
# the host reports it.
#
#   plugins/build.sh                 # all plugins
#   plugins/build.sh vakt-plugin-mail # only the named packages
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET=wasm32-wasip2
PLUGINS=(
    vakt-plugin-mail
    vakt-plugin-redmine
    vakt-plugin-request-tracker
    vakt-plugin-scim
    vakt-plugin-directory-file
    vakt-test-plugin-noop
    vakt-test-plugin-spin
    vakt-test-plugin-membomb
    vakt-test-plugin-forbidden-http
    vakt-test-plugin-metadata-http
    vakt-test-plugin-loopback-http
    vakt-test-plugin-bigbody
    vakt-test-plugin-panics
    vakt-test-plugin-greedy
)
if [[ $# -gt 0 ]]; then
    PLUGINS=("$@")
fi

if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$TARGET"; then
        rustup target add "$TARGET" >&2
    fi
fi

args=()
for p in "${PLUGINS[@]}"; do
    args+=(-p "$p")
done

CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
CARGO_PROFILE_RELEASE_LTO=thin \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_STRIP=true \
    cargo build --quiet --target "$TARGET" --release "${args[@]}" >&2

out="${CARGO_TARGET_DIR:-$PWD/target}/$TARGET/release"
for p in "${PLUGINS[@]}"; do
    f="$out/${p//-/_}.wasm"
    # A component starts with \0asm and the component-model layer: 0d 00 01 00.
    if [[ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" != "0061736d0d000100" ]]; then
        echo "plugins/build.sh: $f is not a WebAssembly component" >&2
        exit 1
    fi
done
echo "$out"
