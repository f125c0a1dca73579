#!/usr/bin/env bash
# A real Redmine (Debian's `redmine` package, SQLite, served by `thin`) on
# loopback, for the ticketing connector's tests.
#
#   scripts/servers/redmine.sh install  # apt-get install when missing (root)
#   scripts/servers/redmine.sh start    # set up once, start if not running,
#                                       # print REDMINE_URL=… and REDMINE_KEY=…
#   scripts/servers/redmine.sh stop
#   scripts/servers/redmine.sh status   # exit 0 when running and healthy
#
# State lives in ${VAKT_SERVERS_DIR:-<repo>/target/test-servers}/redmine/:
# the SQLite database, the instance's config, logs, attachments, the admin
# API key, the port and thin's pid. Delete the directory (after `stop`) for
# a fresh instance.
#
# Debian's package (5.0 on bookworm) lives in /usr/share/redmine and runs
# several "instances": REDMINE_INSTANCE=<name> makes Redmine read its
# config (database.yml, secret_key.txt), logs, files and tmp from
# /usr/share/redmine/instances/<name> = /var/lib/redmine/<name>. This script
# makes an instance `vakt-<hash of the state dir>` whose directory there is
# a symlink to the state dir, so nothing of it is shared with the package's
# `default` instance (which the install leaves unconfigured: no database).
#
# `start` is idempotent and safe to call from several test processes at
# once: it holds an flock on the state dir, and when the server is already
# running and answering it only prints the connection info. Setup runs
# once (migrations and default data: ~10 s); seeding (the REST API switched
# on, the admin's API key, the project `sakerhet` with all trackers and the
# admin as its Manager, the filterable issue custom field `vakt-key`, a
# field `Område`, a user `kalle` who is no member) runs again only when
# SEED_VERSION changes. thin listens on 127.0.0.1 only, on
# $VAKT_REDMINE_PORT or the first free port from 3300, remembered in the
# state dir. Everything runs as root (fine on a test machine; the package's
# www-data layout is not needed for one instance in a private directory).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_BASE="${VAKT_SERVERS_DIR:-$ROOT/target/test-servers}"
mkdir -p "$STATE_BASE"
STATE="$(cd "$STATE_BASE" && pwd)/redmine"
APP=/usr/share/redmine
PACKAGES=(redmine redmine-sqlite thin)

log() { printf 'redmine.sh: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

# ---- install ----

installed() {
    local p
    for p in "${PACKAGES[@]}"; do
        [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || return 1
    done
    command -v thin >/dev/null && [[ -f $APP/config.ru ]]
}

cmd_install() {
    if installed; then
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || die "installing ${PACKAGES[*]} needs root (apt-get)"
    log "installing ${PACKAGES[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    # The package's own `default` instance stays without a database: the
    # tests use an instance of their own, set up by `start`.
    echo "redmine redmine/instances/default/dbconfig-install boolean false" | debconf-set-selections
    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=900 --no-install-recommends)
    if ! "${apt[@]}" install "${PACKAGES[@]}" >&2; then
        log "apt-get install failed; updating the package lists and trying again"
        apt-get -q -o DPkg::Lock::Timeout=900 update >&2
        "${apt[@]}" install "${PACKAGES[@]}" >&2
    fi
    installed || die "${PACKAGES[*]} did not install"
}

# ---- start / stop ----

instance_name() {
    printf 'vakt-%s' "$(printf '%s' "$STATE" | sha256sum | cut -c1-10)"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pid_alive() {
    [[ -f $STATE/thin.pid ]] && kill -0 "$(cat "$STATE/thin.pid")" 2>/dev/null
}

# Answers 200 with the admin key: our Redmine, up and set up.
healthy() {
    [[ -f $STATE/port && -f $STATE/api_key ]] || return 1
    pid_alive || return 1
    local port code
    port="$(cat "$STATE/port")"
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        -H "X-Redmine-API-Key: $(cat "$STATE/api_key")" \
        "http://127.0.0.1:$port/users/current.json" 2>/dev/null || true)"
    [[ $code == 200 ]]
}

print_info() {
    echo "REDMINE_URL=http://127.0.0.1:$(cat "$STATE/port")"
    echo "REDMINE_KEY=$(cat "$STATE/api_key")"
}

pick_port() {
    if [[ -n ${VAKT_REDMINE_PORT:-} ]]; then
        port_open "$VAKT_REDMINE_PORT" && die "port $VAKT_REDMINE_PORT (VAKT_REDMINE_PORT) is in use"
        echo "$VAKT_REDMINE_PORT"
        return
    fi
    local p
    if [[ -f $STATE/port ]] && ! port_open "$(cat "$STATE/port")"; then
        cat "$STATE/port"
        return
    fi
    for p in $(seq 3300 3399); do
        if ! port_open "$p"; then
            echo "$p"
            return
        fi
    done
    die "no free port in 3300-3399"
}

# Runs a command in the Redmine app for our instance.
in_app() {
    (cd "$APP" && env REDMINE_INSTANCE="$(instance_name)" RAILS_ENV=production "$@")
}

# A setup step, its output in log/setup.log (shown when it fails).
step() {
    if ! in_app "$@" >>"$STATE/log/setup.log" 2>&1; then
        tail -n 40 "$STATE/log/setup.log" >&2
        die "setup failed at \`$*\`; the whole log is $STATE/log/setup.log"
    fi
}

setup_instance() {
    local inst link
    inst="$(instance_name)"
    link="/var/lib/redmine/$inst"
    mkdir -p "$STATE"/{config,log,files,tmp/cache,tmp/pdf,tmp/sessions,tmp/sockets,public/plugin_assets,db}
    if [[ "$(readlink "$link" 2>/dev/null || true)" != "$STATE" ]]; then
        rm -rf "$link"
        ln -s "$STATE" "$link"
    fi
    cat >"$STATE/config/database.yml" <<EOF
production:
  adapter: sqlite3
  database: $STATE/db/redmine.sqlite3
  pool: 10
  timeout: 10000
EOF
    [[ -f $STATE/config/secret_key.txt ]] ||
        head -c 32 /dev/urandom | sha256sum | cut -c1-32 >"$STATE/config/secret_key.txt"
    if [[ -f $STATE/migrated ]]; then
        return 0
    fi
    log "setting up a fresh Redmine instance in $STATE"
    rm -f "$STATE/db/redmine.sqlite3" "$STATE/ready" "$STATE/api_key"
    : >"$STATE/log/setup.log"
    # Instances of other state dirs share /var/lib/redmine/Gemfile.lock.
    exec 8>/var/lib/redmine/.vakt-setup.lock
    flock -w 900 8 || die "timed out waiting for /var/lib/redmine/.vakt-setup.lock"
    # The Gemfile adds the sqlite3 gem when an instance's database.yml names
    # it; refresh the lock like the package's postinst does.
    step bundle install --local --quiet
    step bin/rake db:migrate
    step bin/rake redmine:load_default_data REDMINE_LANG=en
    exec 8>&-
    touch "$STATE/migrated"
}

# What the tests need in the database, idempotent. Bump SEED_VERSION when it
# changes: an instance seeded by an older version is seeded again.
SEED_VERSION=2
SEED=$(
    cat <<'RUBY'
Setting.rest_api_enabled = '1'
Setting.login_required = '1'
Setting.default_language = 'en'
admin = User.find_by_login('admin')
admin.must_change_passwd = false
admin.save!
key = admin.api_key
project = Project.find_by_identifier('sakerhet') || Project.new
project.name = 'Säkerhet'
project.identifier = 'sakerhet'
project.is_public = false
project.trackers = Tracker.all
project.enabled_module_names = %w[issue_tracking]
project.save!
# The admin is a member (Manager), so issues may be assigned to it; `kalle`
# exists but is no member, so an issue cannot be assigned to him.
manager = Role.find_by_name('Manager')
unless Member.where(project_id: project.id, user_id: admin.id).exists?
  Member.create!(project: project, principal: admin, roles: [manager])
end
kalle = User.find_by_login('kalle') || User.new(firstname: 'Kalle', lastname: 'Anka', mail: 'kalle@kommun.example')
kalle.login = 'kalle'
kalle.password = kalle.password_confirmation = 'kalle-password-1'
kalle.save!
field = IssueCustomField.find_by_name('vakt-key') || IssueCustomField.new
field.name = 'vakt-key'
field.field_format = 'string'
field.is_for_all = true
field.is_filter = true
field.searchable = true
field.visible = true
field.trackers = Tracker.all
field.save!
# A plain custom field for `fields` in tests.
area = IssueCustomField.find_by_name('Område') || IssueCustomField.new
area.name = 'Område'
area.field_format = 'string'
area.is_for_all = true
area.visible = true
area.trackers = Tracker.all
area.save!
File.write(ENV.fetch('VAKT_KEY_FILE'), key)
RUBY
)

seeded() {
    [[ -f $STATE/ready && "$(cat "$STATE/ready")" == "$SEED_VERSION" && -s $STATE/api_key ]]
}

seed() {
    seeded && return 0
    log "seeding the instance (REST API, API key, project sakerhet, custom fields, users)"
    VAKT_KEY_FILE="$STATE/api_key" step bin/rails runner "$SEED"
    [[ -s $STATE/api_key ]] || die "seeding did not write the API key"
    echo "$SEED_VERSION" >"$STATE/ready"
}

start_server() {
    local port
    port="$(pick_port)"
    echo "$port" >"$STATE/port"
    rm -f "$STATE/thin.pid"
    log "starting thin on 127.0.0.1:$port"
    in_app thin start --daemonize --address 127.0.0.1 --port "$port" \
        --environment production --chdir "$APP" \
        --pid "$STATE/thin.pid" --log "$STATE/log/thin.log" --rackup "$APP/config.ru" >&2 8>&- 9>&-
    local i
    for i in $(seq 1 240); do
        if healthy; then
            return 0
        fi
        if ((i > 10)) && ! pid_alive; then
            tail -n 30 "$STATE/log/thin.log" >&2 || true
            die "thin exited during start; see $STATE/log/thin.log"
        fi
        sleep 0.5
    done
    tail -n 30 "$STATE/log/thin.log" >&2 || true
    die "Redmine did not answer on 127.0.0.1:$port within 120 s"
}

with_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock -w 900 9 || die "timed out waiting for the lock on $STATE"
}

cmd_start() {
    installed || die "Redmine is not installed: run \`$0 install\` first (as root)"
    with_lock
    if ! healthy; then
        if pid_alive; then
            log "thin is running but not healthy: restarting it"
            stop_server
        fi
        setup_instance
        seed
        start_server
    else
        seed
    fi
    print_info
}

stop_server() {
    if pid_alive; then
        local pid i
        pid="$(cat "$STATE/thin.pid")"
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/thin.pid"
}

cmd_stop() {
    with_lock
    stop_server
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) healthy && print_info ;;
*)
    echo "usage: $0 install|start|stop|status" >&2
    exit 2
    ;;
esac
