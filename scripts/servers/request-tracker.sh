#!/usr/bin/env bash
# Request Tracker 5 from Debian (request-tracker5) on loopback, for the tests
# of the request-tracker connector (plugins/request-tracker/).
#
#   scripts/servers/request-tracker.sh install  # apt-get install when missing (root)
#   scripts/servers/request-tracker.sh start    # prints RT_URL=… and RT_TOKEN=…
#   scripts/servers/request-tracker.sh stop
#
# Everything lives in ${VAKT_SERVERS_DIR:-target/test-servers}/rt/ (relative
# paths are taken from the repository root): an SQLite database, the site
# config that points RT at it, the server's log, its pid and port, the auth
# token, and outgoing.mbox, where RT's mail goes. Debian's own
# /etc/request-tracker5 configuration is not used (RT_SITE_CONFIG and an
# empty RT_SITE_CONFIG_DIR replace it), so nothing under /etc or /var is
# touched after `install`.
#
# `start` is idempotent and safe to run from several test processes at once
# (one flock around it): when the server is up and answers with the token it
# only prints the two lines. Otherwise it initialises the database once
# (rt-setup-database, then a small Perl snippet through RT's own API that
# creates an auth token for root; the queues `General` and `vakt` with the
# ticket custom field `vakt-key`; the queue `vakt-nocf` without it; and the
# custom field `Severity` on `vakt`), starts `rt-server` (Starlet, 4
# workers) bound to 127.0.0.1 on a free port (the same one as last time when
# it is free), and waits until REST2 answers. A later `start` reuses the
# database; delete the directory to begin afresh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# curl: the health check.
PACKAGES=(request-tracker5 rt5-db-sqlite rt5-standalone curl)
RT_LIB=/usr/share/request-tracker5/lib
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server
SETUP_DB=/usr/sbin/rt-setup-database-5
# Bumped when what `start` sets up changes: a database of another layout is
# made afresh.
LAYOUT=3

dir="${VAKT_SERVERS_DIR:-target/test-servers}/rt"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

log() { echo "request-tracker.sh: $*" >&2; }

installed() {
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
    done
}

cmd_install() {
    if installed; then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        log "request-tracker5 is not installed and this is not root: run as root, or" \
            "apt-get install ${PACKAGES[*]}"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # What the packages would ask. No database through dbconfig-common (each
    # test run makes its own), no cron jobs; the names are placeholders.
    debconf-set-selections <<'EOF'
request-tracker5 request-tracker5/dbconfig-install boolean false
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
request-tracker5 request-tracker5/rtname string vakt-test
request-tracker5 request-tracker5/organization string vakt.test
request-tracker5 request-tracker5/correspondaddress string rt@vakt.test
request-tracker5 request-tracker5/commentaddress string rt-comment@vakt.test
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1
request-tracker5 request-tracker5/webpath string /rt
EOF
    log "installing ${PACKAGES[*]} (once)"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    log "installed"
}

# Environment for every RT command: our site config only.
rt_env() {
    export RT_SITE_CONFIG="$dir/RT_SiteConfig.pm"
    export RT_SITE_CONFIG_DIR="$dir/site-config.d"
    export PERL5LIB="$RT_LIB${PERL5LIB:+:$PERL5LIB}"
}

write_config() {
    local port=$1
    mkdir -p "$dir/site-config.d" "$dir/mason" "$dir/sessions"
    cat >"$dir/sendmail" <<EOF
#!/bin/sh
{ echo "From rt@vakt.test \$(date)"; cat; echo; } >>'$dir/outgoing.mbox'
EOF
    chmod 755 "$dir/sendmail"
    cat >"$dir/RT_SiteConfig.pm" <<EOF
# Written by scripts/servers/request-tracker.sh; rewritten at every start.
Set(\$rtname, 'vakt-test');
Set(\$Organization, 'vakt.test');
Set(\$CorrespondAddress, 'rt@vakt.test');
Set(\$CommentAddress, 'rt-comment@vakt.test');
Set(\$Timezone, 'UTC');
Set(\$DatabaseType, 'SQLite');
Set(\$DatabaseName, '$dir/rt.db');
Set(\$DatabaseHost, 'localhost');
Set(\$DatabaseUser, '');
Set(\$DatabasePassword, '');
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, $port);
Set(\$WebPath, '');
Set(\$WebBaseURL, 'http://127.0.0.1:$port');
Set(\$WebURL, 'http://127.0.0.1:$port/');
Set(\$CanonicalizeRedirectURLs, 0);
Set(\$RestrictReferrer, 0);
Set(\$LogToSyslog, undef);
Set(\$LogToSTDERR, 'warning');
Set(\$LogToFile, undef);
# No mail leaves the machine: RT "sends" into outgoing.mbox here.
Set(\$MailCommand, 'sendmailpipe');
Set(\$SendmailPath, '$dir/sendmail');
Set(\$LogDir, '$dir');
Set(\$MasonDataDir, '$dir/mason');
Set(\$MasonSessionDir, '$dir/sessions');
# Every REST2 request checks the token with bcrypt: RT's default cost (12)
# makes each take ~0.3 s of CPU. Tokens are hashed with the cost set when
# they are made, so this must be set before the database is seeded.
Set(\$BcryptCost, 4);
1;
EOF
}

# Creates the token, queues and custom field; prints the token.
seed() {
    perl -MRT -e '
        use strict; use warnings;
        RT::LoadConfig(); RT::Init();
        my $sys = RT->SystemUser;
        my $root = RT::User->new($sys); $root->Load("root");
        $root->Id or die "no root user\n";
        my %queue;
        for my $name (qw(General vakt vakt-nocf)) {
            my $q = RT::Queue->new($sys); $q->Load($name);
            unless ($q->Id) {
                my ($ok, $msg) = $q->Create(Name => $name, Description => "vakt tests");
                $ok or die "queue $name: $msg\n";
            }
            $queue{$name} = $q;
        }
        my $cf = RT::CustomField->new($sys);
        $cf->LoadByName(Name => "vakt-key", LookupType => RT::Ticket->CustomFieldLookupType);
        unless ($cf->Id) {
            my ($ok, $msg) = $cf->Create(
                Name => "vakt-key", Type => "Freeform", MaxValues => 1,
                LookupType => RT::Ticket->CustomFieldLookupType,
                Description => "the idempotency key of the vakt step that opened the ticket");
            $ok or die "custom field: $msg\n";
        }
        for my $name (qw(General vakt)) {
            next if $cf->IsAdded($queue{$name}->Id);
            my ($ok, $msg) = $cf->AddToObject($queue{$name});
            $ok or die "custom field on $name: $msg\n";
        }
        my $severity = RT::CustomField->new($sys);
        my ($ok, $msg) = $severity->Create(
            Name => "Severity", Type => "Freeform", MaxValues => 1,
            LookupType => RT::Ticket->CustomFieldLookupType);
        $ok or die "custom field Severity: $msg\n";
        ($ok, $msg) = $severity->AddToObject($queue{vakt});
        $ok or die "custom field Severity on vakt: $msg\n";
        my $token = RT::AuthToken->new(RT::CurrentUser->new($sys));
        my ($id, $why, $auth) = $token->Create(Owner => $root->Id, Description => "vakt tests");
        $id or die "auth token: $why\n";
        print "$auth\n";
    '
}

free_port() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0)
            or die "no free port: $!\n";
        print $s->sockport, "\n";'
}

port_free() {
    perl -MIO::Socket::INET -e '
        exit(IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
            LocalPort => $ARGV[0], ReuseAddr => 1) ? 0 : 1)' "$1"
}

healthy() {
    [[ -f "$dir/port" && -f "$dir/token" ]] || return 1
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        -H "Authorization: token $(cat "$dir/token")" \
        "http://127.0.0.1:$(cat "$dir/port")/REST/2.0/rt" 2>/dev/null) || return 1
    [[ "$code" == 200 ]]
}

# Our rt-server is alive (a pid reused by another program after a reboot
# does not count, and is never signalled).
running() {
    local pid
    pid=$(cat "$dir/pid" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q rt-server
}

info() {
    echo "RT_URL=http://127.0.0.1:$(cat "$dir/port")"
    echo "RT_TOKEN=$(cat "$dir/token")"
}

stop_server() {
    if running; then
        local pid
        pid=$(cat "$dir/pid")
        # rt-server runs in its own session (setsid): end the whole group.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$dir/pid"
}

cmd_start() {
    if [[ ! -x "$RT_SERVER" ]]; then
        log "request-tracker5 is not installed: run $0 install first"
        exit 1
    fi
    exec 9>"$dir/lock"
    flock -w 600 9 || { log "timed out waiting for $dir/lock"; exit 1; }

    if running && healthy && [[ "$(cat "$dir/initialised" 2>/dev/null)" == "$LAYOUT" ]]; then
        info
        return 0
    fi
    stop_server

    local port
    port=$(cat "$dir/port" 2>/dev/null || true)
    if [[ -z "$port" ]] || ! port_free "$port"; then
        port=$(free_port)
    fi
    write_config "$port"
    rt_env

    if [[ "$(cat "$dir/initialised" 2>/dev/null)" != "$LAYOUT" ]]; then
        log "initialising the database in $dir"
        rm -f "$dir/rt.db" "$dir/token"
        # SQLite needs no server to create the database in: the file is
        # made on first use, so `create` is skipped.
        "$SETUP_DB" --action init --skip-create --dba '' --dba-password '' \
            >"$dir/setup.log" 2>&1 </dev/null || {
            log "rt-setup-database failed; see $dir/setup.log"
            tail -20 "$dir/setup.log" >&2
            exit 1
        }
        seed >"$dir/token.new" 2>>"$dir/setup.log" || {
            log "seeding RT failed; see $dir/setup.log"
            tail -20 "$dir/setup.log" >&2
            exit 1
        }
        mv "$dir/token.new" "$dir/token"
        echo "$LAYOUT" >"$dir/initialised"
    fi

    echo "$port" >"$dir/port"
    # Its own session, no inherited descriptors: the caller's pipes close
    # when this script ends, and `stop` can end the whole process group.
    setsid "$RT_SERVER" --server Starlet --host 127.0.0.1 --port "$port" \
        --max-workers 4 </dev/null >>"$dir/server.log" 2>&1 9>&- &
    echo $! >"$dir/pid"

    for _ in $(seq 600); do
        if healthy; then
            info
            return 0
        fi
        if ! running; then
            log "rt-server exited; the end of $dir/server.log:"
            tail -20 "$dir/server.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    log "rt-server did not answer on 127.0.0.1:$port within 60 s; see $dir/server.log"
    exit 1
}

cmd_stop() {
    exec 9>"$dir/lock"
    flock -w 120 9 || true
    stop_server
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    *)
        echo "usage: $0 install|start|stop" >&2
        exit 2
        ;;
esac
