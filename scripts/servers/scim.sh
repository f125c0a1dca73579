#!/usr/bin/env bash
# A SCIM 2.0 server on loopback for vakt's identity connector tests:
# `scim2-server` from PyPI (in-memory, RFC 7643/7644, ETags, PATCH, bulk,
# filters, static bearer tokens), in a virtual environment of its own.
#
#   scripts/servers/scim.sh install              # venv + pinned packages; fast no-op when present
#   scripts/servers/scim.sh start                # idempotent; prints SCIM_URL=… SCIM_TOKEN=…
#   scripts/servers/scim.sh seed N_USERS N_GROUPS [MEMBERSHIPS_PER_USER]
#                                                # a fresh tenant with users, managers, groups;
#                                                # prints SCIM_URL=… (the tenant) and SCIM_SEED_JSON=…
#   scripts/servers/scim.sh check [URL]         # scim2-tester's RFC checks (default: a fresh tenant)
#   scripts/servers/scim.sh status | stop
#
# The server runs with `--dynamic-tenants`: every path prefix /NAME/v2 is a
# tenant with its own resources, created on its first request. `seed` makes
# a new tenant each time, so every run starts from an empty directory and
# concurrent test runs do not see each other's data. Everything is kept in
# memory: stopping the server forgets it all.
#
# Bearer authentication is enforced: the token is made at the first start
# and kept in $DIR/token (mode 0600).
#
# Environment: VAKT_SERVERS_DIR (default target/test-servers), VAKT_SCIM_PORT
# (pins the port; otherwise the first free one from 8700, remembered)
# (default 8700), VAKT_SCIM_PYTHON (the Python that makes the venv; default
# Debian's /usr/bin/python3, whose python3-venv is installed when missing).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
BASE_DIR=${VAKT_SERVERS_DIR:-$ROOT/target/test-servers}
case $BASE_DIR in /*) ;; *) BASE_DIR=$ROOT/$BASE_DIR ;; esac
DIR=$BASE_DIR/scim
VENV=$DIR/venv
# The port: VAKT_SCIM_PORT pins it; otherwise the one this state dir used
# last, or 8700, or the next free one up to 8799 (remembered in $DIR/port),
# so two checkouts on one machine do not fight over a port.
if [[ -n ${VAKT_SCIM_PORT:-} ]]; then
    PORT=$VAKT_SCIM_PORT
    PINNED=1
else
    PORT=$(cat "$DIR/port" 2>/dev/null || echo 8700)
    PINNED=0
fi
HOST=127.0.0.1
# Pinned, so a new upload cannot change the server under the tests.
PACKAGES=(scim2-server==0.8.3 "scim2-tester[httpx2]==0.5.2")
STAMP="${PACKAGES[*]}"

say() { echo "scim.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

lock() {
    mkdir -p "$DIR"
    exec 9>"$DIR/.lock"
    flock 9
}

installed() {
    [[ -x $VENV/bin/scim2-server && -f $VENV/.vakt-stamp && "$(cat "$VENV/.vakt-stamp")" == "$STAMP" ]]
}

pick_python() {
    local py=${VAKT_SCIM_PYTHON:-/usr/bin/python3}
    if ! "$py" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        py=python3
    fi
    "$py" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null ||
        die "scim2-server needs Python 3.11 or newer; set VAKT_SCIM_PYTHON"
    echo "$py"
}

do_install() {
    installed && return 0
    local py
    py=$(pick_python)
    # The stamp is written last: a half-made venv is made again. A server
    # running from the old venv is stopped first.
    do_stop 2>/dev/null || true
    rm -rf "$VENV"
    if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian's Python ships venv's ensurepip separately.
        say "installing python3-venv from Debian"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"
        "$py" -m venv "$VENV" || die "cannot make a virtual environment with $py"
    fi
    say "installing ${PACKAGES[*]} into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
    echo "$STAMP" >"$VENV/.vakt-stamp"
}

token() {
    if [[ ! -s $DIR/token ]]; then
        (umask 077 && "$VENV/bin/python" -c 'import secrets; print("scim-" + secrets.token_hex(16))' >"$DIR/token")
    fi
    cat "$DIR/token"
}

# 0 when a scim2-server with our token answers on the port.
healthy() {
    "$VENV/bin/python" - "$HOST" "$PORT" "$(token)" <<'EOF' 2>/dev/null
import sys, urllib.request
host, port, token = sys.argv[1:4]
req = urllib.request.Request(
    f"http://{host}:{port}/health/v2/Users?count=1",
    headers={"Authorization": f"Bearer {token}"},
)
with urllib.request.urlopen(req, timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

port_taken() {
    "$VENV/bin/python" - "$HOST" "$PORT" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
EOF
}

our_pid() {
    local pid
    pid=$(cat "$DIR/server.pid" 2>/dev/null) || return 1
    [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q scim2-server && echo "$pid"
}

print_env() {
    echo "SCIM_URL=http://$HOST:$PORT/vakt/v2"
    echo "SCIM_ROOT=http://$HOST:$PORT"
    echo "SCIM_TOKEN=$(token)"
}

do_start() {
    do_install
    if healthy; then
        print_env
        return 0
    fi
    local pid
    if pid=$(our_pid); then
        say "the server (pid $pid) does not answer with the current token: restarting it"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    if port_taken; then
        [[ $PINNED == 1 ]] && die "port $PORT on $HOST is taken by another program; set another VAKT_SCIM_PORT"
        local p
        for p in $(seq 8700 8799); do
            PORT=$p
            port_taken || break
        done
        port_taken && die "no free port from 8700 to 8799 on $HOST; set VAKT_SCIM_PORT"
    fi
    echo "$PORT" >"$DIR/port"
    local tok
    tok=$(token)
    # setsid: the server outlives this script and the test that started it.
    setsid "$VENV/bin/scim2-server" --hostname "$HOST" --port "$PORT" \
        --bearer-token "$tok" --dynamic-tenants \
        </dev/null >"$DIR/server.log" 2>&1 9>&- &
    echo $! >"$DIR/server.pid"
    for _ in $(seq 150); do
        if healthy; then
            print_env
            return 0
        fi
        kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$DIR/server.log" >&2 || true
    die "scim2-server did not become healthy on $HOST:$PORT (log: $DIR/server.log)"
}

do_stop() {
    local pid
    if pid=$(our_pid); then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        say "stopped (pid $pid)"
    else
        say "not running"
    fi
    rm -f "$DIR/server.pid"
}

cmd=${1:-}
shift || true
case $cmd in
install)
    lock
    do_install
    ;;
start)
    lock
    do_start
    ;;
seed)
    [[ $# -ge 2 ]] || die "usage: scim.sh seed N_USERS N_GROUPS [MEMBERSHIPS_PER_USER]"
    lock
    do_start >/dev/null
    flock -u 9
    mkdir -p "$DIR/seeds"
    "$VENV/bin/python" "$ROOT/scripts/servers/scim/seed.py" \
        --root "http://$HOST:$PORT" --token "$(token)" --out-dir "$DIR/seeds" \
        --users "$1" --groups "$2" --per-user "${3:-2}"
    ;;
check)
    lock
    do_start >/dev/null
    flock -u 9
    url=${1:-http://$HOST:$PORT/check-$(date +%s)-$$/v2}
    "$VENV/bin/python" "$ROOT/scripts/servers/scim/check.py" --url "$url" --token "$(token)"
    ;;
status)
    if [[ -x $VENV/bin/python ]] && healthy; then
        print_env
    else
        say "not running"
        exit 1
    fi
    ;;
stop)
    lock
    do_stop
    ;;
*)
    die "usage: scim.sh install | start | seed N_USERS N_GROUPS [PER_USER] | check [URL] | status | stop"
    ;;
esac
