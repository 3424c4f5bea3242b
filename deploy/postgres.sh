#!/usr/bin/env bash
# deploy/postgres.sh - a local PostgreSQL server from the Debian packages, for development and tests.
#
# Uses Debian's postgresql-common cluster tools (pg_createcluster / pg_ctlcluster), which work without
# systemd. The newest installed server version is used; its cluster (default `main`) is created if
# missing, listens on 127.0.0.1:$CHURNWATCH_PG_PORT, and gets a `churnwatch` role and database.
#
# Usage: deploy/postgres.sh {start|stop|kill|status}
#   start   install the server if missing (root + apt), create/start the cluster, wait with pg_isready
#           (30 s), create role + database idempotently, verify password login over TCP.
#   stop    stop the cluster (fast mode: clients are disconnected - what fault tests want).
#   kill    SIGKILL the postmaster (simulated crash); the next start runs crash recovery.
#   status  exit 0 if the server accepts connections on 127.0.0.1:$CHURNWATCH_PG_PORT, 3 if not.
#
# Environment:
#   CHURNWATCH_PG_PORT      default 5432
#   CHURNWATCH_PG_CLUSTER   Debian cluster name, default main (another name gives an isolated server)
#   CHURNWATCH_HOME         only for the lock file (default ${XDG_CACHE_HOME:-$HOME/.cache}/churnwatch)
#
# Needs root (or the postgres user) for start/stop: the Debian cluster tools and the server run as
# the `postgres` system user.
set -euo pipefail

readonly PG_PORT="${CHURNWATCH_PG_PORT:-5432}"
readonly PG_CLUSTER="${CHURNWATCH_PG_CLUSTER:-main}"
readonly PG_HOST=127.0.0.1
readonly APP_USER=churnwatch
readonly APP_PASSWORD=churnwatch
readonly APP_DB=churnwatch
readonly CHURNWATCH_HOME="${CHURNWATCH_HOME:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/churnwatch}"
readonly LOCK_FILE="$CHURNWATCH_HOME/postgres.lock"
readonly START_DEADLINE_S=30
readonly POLL_INTERVAL_S=0.25

PG_VERSION=""  # set by pick_version

say() { printf 'postgres: %s\n' "$*"; }
die() { printf 'postgres: error: %s\n' "$*" >&2; exit 1; }

usage() {
    printf 'usage: %s {start|stop|kill|status}\n' "$0" >&2
    exit 2
}

# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------

# Runs a command as the postgres system user. cd / first: psql/pg_ctl complain when the caller's
# working directory (e.g. /root) is not readable by postgres.
as_postgres() {
    if [[ "$(id -un)" == postgres ]]; then
        (cd / && "$@")
    elif [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        die "run as root (or as the postgres user): '$*' must run as postgres"
    fi
}

server_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

installed_versions() {
    local bin
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x "$bin" ]] || continue
        bin="${bin#/usr/lib/postgresql/}"
        printf '%s\n' "${bin%%/*}"
    done
}

# The server binaries come from Debian's `postgresql` metapackage (newest supported major version).
ensure_server_installed() {
    [[ -n "$(installed_versions)" ]] && return 0
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "no PostgreSQL server installed; installing Debian package 'postgresql'"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        die "no PostgreSQL server found in /usr/lib/postgresql/*/bin/postgres (Debian/Ubuntu: apt-get install postgresql)"
    fi
    [[ -n "$(installed_versions)" ]] || die "installing 'postgresql' did not provide /usr/lib/postgresql/*/bin/postgres"
}

pick_version() {
    PG_VERSION="$(installed_versions | sort -V | tail -n 1)"
    [[ -n "$PG_VERSION" ]] || die "no PostgreSQL server installed"
}

# pg_ctlcluster for our cluster. 9>&- keeps the start lock out of the long-lived postmaster, which
# would otherwise inherit it and block every later start/stop.
pg_ctl_cluster() { pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" "$@" 9>&-; }

cluster_exists() { [[ -f "/etc/postgresql/$PG_VERSION/$PG_CLUSTER/postgresql.conf" ]]; }

# pg_lsclusters prints: version cluster port status owner datadir logfile
cluster_field() {
    pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" -v f="$1" '$1 == v && $2 == c { print $f }'
}
cluster_online() { [[ "$(cluster_field 4)" == online* ]]; }

server_log_tail() {
    local logfile
    logfile="$(cluster_field 7)"
    [[ -n "$logfile" && -r "$logfile" ]] || return 0
    printf -- '----- last 40 lines of %s -----\n' "$logfile" >&2
    tail -n 40 "$logfile" >&2
    printf -- '-----\n' >&2
}

# Serialises start/stop (e.g. local-stack.sh and a test fixture at once).
take_lock() {
    mkdir -p "$CHURNWATCH_HOME"
    exec 9>"$LOCK_FILE"
    flock -w 120 9 || die "another deploy/postgres.sh holds $LOCK_FILE for more than 120 s"
}

# ---------------------------------------------------------------------------------------------------
# Cluster setup
# ---------------------------------------------------------------------------------------------------

create_cluster_if_missing() {
    cluster_exists && return 0
    say "creating cluster $PG_VERSION/$PG_CLUSTER on port $PG_PORT"
    # pg_createcluster only initialises (no --start); Debian's defaults give listen_addresses=localhost
    # and a pg_hba.conf with scram-sha-256 for 127.0.0.1/32.
    pg_createcluster --port "$PG_PORT" "$PG_VERSION" "$PG_CLUSTER" >/dev/null
}

# An existing cluster may have been created on another port (pg_createcluster picks the next free one
# when a second version is installed); make it listen where the project expects it.
ensure_port() {
    local configured
    configured="$(pg_conftool -s "$PG_VERSION" "$PG_CLUSTER" show port 2>/dev/null || true)"
    if [[ "$configured" != "$PG_PORT" ]]; then
        say "setting port of cluster $PG_VERSION/$PG_CLUSTER: ${configured:-unset} -> $PG_PORT"
        pg_conftool "$PG_VERSION" "$PG_CLUSTER" set port "$PG_PORT"
        if cluster_online; then
            pg_ctl_cluster restart
        fi
    fi
}

start_cluster() {
    if cluster_online; then
        return 0
    fi
    say "starting cluster $PG_VERSION/$PG_CLUSTER"
    # pg_ctlcluster runs pg_ctl as the cluster owner; without systemd it starts the server directly.
    pg_ctl_cluster start || { server_log_tail; die "pg_ctlcluster start failed"; }
}

wait_until_ready() {
    local deadline=$((SECONDS + START_DEADLINE_S))
    until server_ready; do
        if ((SECONDS >= deadline)); then
            server_log_tail
            die "$PG_HOST:$PG_PORT not accepting connections within ${START_DEADLINE_S} s"
        fi
        sleep "$POLL_INTERVAL_S"
    done
}

# Idempotent: CREATE only when missing (\gexec runs the generated statement, nothing when no row);
# ALTER ROLE every time so the password and attributes are right even for a pre-existing role.
provision_role_and_database() {
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$PG_PORT" -d postgres <<SQL
SELECT 'CREATE ROLE $APP_USER' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_USER')\gexec
ALTER ROLE $APP_USER WITH LOGIN CREATEDB PASSWORD '$APP_PASSWORD';
SELECT 'CREATE DATABASE $APP_DB OWNER $APP_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$APP_DB')\gexec
SQL
}

app_url() { printf 'postgresql://%s:%s@%s:%s/%s' "$APP_USER" "$APP_PASSWORD" "$PG_HOST" "$PG_PORT" "$APP_DB"; }

tcp_login_works() {
    PGCONNECT_TIMEOUT=5 psql -X -q -tA "$(app_url)" -c 'select 1' 2>/dev/null | grep -qx 1
}

# The application logs in with a password over TCP. Debian's default pg_hba.conf already allows that
# (scram-sha-256 for 127.0.0.1/32); only if a customised pg_hba.conf rejects it, a rule for exactly
# this role (any database) is put first and the server reloaded.
ensure_tcp_password_login() {
    tcp_login_works && return 0
    local hba
    hba="$(as_postgres psql -X -q -tA -h /var/run/postgresql -p "$PG_PORT" -d postgres -c 'SHOW hba_file')"
    say "password login over TCP failed; adding a scram-sha-256 rule for $APP_USER to $hba"
    local tmp="$hba.churnwatch.$$"
    {
        printf '# added by churnwatch deploy/postgres.sh: password login for the app over loopback TCP\n'
        # all databases: the role has CREATEDB, tests may create throwaway databases.
        printf 'host    all    %s    127.0.0.1/32    scram-sha-256\n' "$APP_USER"
        cat "$hba"
    } >"$tmp"
    chown --reference="$hba" "$tmp"
    chmod --reference="$hba" "$tmp"
    mv -f "$tmp" "$hba"
    pg_ctl_cluster reload
    tcp_login_works || die "still cannot log in with $(app_url) - check $hba and the server log"
}

# ---------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------

cmd_start() {
    take_lock
    ensure_server_installed
    pick_version
    local already=0
    if server_ready; then
        already=1
        say "already accepting connections on $PG_HOST:$PG_PORT"
    else
        [[ $EUID -eq 0 || "$(id -un)" == postgres ]] || die "starting PostgreSQL needs root (or the postgres user)"
        create_cluster_if_missing
        ensure_port
        start_cluster
        wait_until_ready
    fi
    provision_role_and_database
    ensure_tcp_password_login
    if ((already)); then
        say "up (reused) - $(app_url)"
    else
        say "started cluster $PG_VERSION/$PG_CLUSTER - $(app_url)"
    fi
}

cmd_stop() {
    take_lock
    pick_version
    if ! cluster_exists || ! cluster_online; then
        say "cluster $PG_VERSION/$PG_CLUSTER is not running"
        return 0
    fi
    say "stopping cluster $PG_VERSION/$PG_CLUSTER"
    pg_ctl_cluster stop
    say "stopped"
}

# The postmaster's pid is the first line of postmaster.pid in the data directory.
cmd_kill() {
    take_lock
    pick_version
    local datadir pid
    datadir="$(cluster_field 6)"
    if [[ -z "$datadir" ]] || ! cluster_online; then
        say "cluster $PG_VERSION/$PG_CLUSTER is not running"
        return 0
    fi
    pid="$(head -n 1 "$datadir/postmaster.pid")"
    say "killing postmaster pid $pid (SIGKILL)"
    kill -KILL "$pid"
    # Backends notice the postmaster's death and exit by themselves; wait for the postmaster only.
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || die "postmaster $pid survived SIGKILL for 10 s"
        sleep 0.1
    done
    say "killed"
}

cmd_status() {
    if server_ready; then
        say "up on $PG_HOST:$PG_PORT - $(app_url)"
        return 0
    fi
    say "down (nothing accepting connections on $PG_HOST:$PG_PORT)"
    return 3
}

main() {
    [[ $# -eq 1 ]] || usage
    [[ "$PG_PORT" =~ ^[0-9]+$ ]] || die "CHURNWATCH_PG_PORT must be a number"
    case "$1" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        kill) cmd_kill ;;
        status) cmd_status ;;
        *) usage ;;
    esac
}

main "$@"
