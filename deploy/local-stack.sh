#!/usr/bin/env bash
# deploy/local-stack.sh - the whole local infrastructure (Kafka + PostgreSQL) without Docker.
#
# Usage: deploy/local-stack.sh {up|down|status|env}
#   up      start what is not running, reuse what is; print connection settings. Idempotent.
#   down    stop both (Kafka first: it has no dependency on PostgreSQL, but services usually do both).
#   status  show both; exit 0 only if both are up, 3 otherwise.
#   env     print the connection settings as shell exports:  eval "$(deploy/local-stack.sh env)"
#
# Same environment variables as deploy/kafka.sh and deploy/postgres.sh (CHURNWATCH_HOME,
# CHURNWATCH_KAFKA_PORT, CHURNWATCH_KAFKA_CONTROLLER_PORT, CHURNWATCH_PG_PORT, CHURNWATCH_PG_CLUSTER).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly KAFKA="$SCRIPT_DIR/kafka.sh"
readonly POSTGRES="$SCRIPT_DIR/postgres.sh"

readonly KAFKA_BOOTSTRAP="127.0.0.1:${CHURNWATCH_KAFKA_PORT:-9092}"
readonly DATABASE_URL="postgresql+asyncpg://churnwatch:churnwatch@127.0.0.1:${CHURNWATCH_PG_PORT:-5432}/churnwatch?ssl=disable"

usage() {
    printf 'usage: %s {up|down|status|env}\n' "$0" >&2
    exit 2
}

print_env() {
    printf 'export CHURNWATCH_KAFKA_BOOTSTRAP_SERVERS=%s\n' "$KAFKA_BOOTSTRAP"
    printf 'export CHURNWATCH_DATABASE_URL=%s\n' "$DATABASE_URL"
}

# Starts one component unless it already answers; records what happened for the summary.
bring_up() {
    local name="$1" script="$2"
    if "$script" status >/dev/null 2>&1; then
        printf '%-10s already running (reused)\n' "$name"
        # postgres.sh start is still run: it only (re)checks the role, database and TCP login.
        if [[ "$name" == postgres ]]; then
            "$script" start >/dev/null
        fi
    else
        printf '%-10s starting...\n' "$name"
        "$script" start
        printf '%-10s started\n' "$name"
    fi
}

cmd_up() {
    # PostgreSQL first: it is quick, and a failure there is reported before the slower Kafka start.
    bring_up postgres "$POSTGRES"
    bring_up kafka "$KAFKA"
    printf '\nLocal stack is up. Connection settings:\n'
    printf '  Kafka bootstrap servers  %s\n' "$KAFKA_BOOTSTRAP"
    printf '  PostgreSQL (psql)        postgresql://churnwatch:churnwatch@127.0.0.1:%s/churnwatch\n' "${CHURNWATCH_PG_PORT:-5432}"
    printf '  PostgreSQL (app)         %s\n\n' "$DATABASE_URL"
    print_env
}

cmd_down() {
    "$KAFKA" stop
    "$POSTGRES" stop
}

cmd_status() {
    local rc=0
    "$KAFKA" status || rc=3
    "$POSTGRES" status || rc=3
    return "$rc"
}

main() {
    [[ $# -eq 1 ]] || usage
    case "$1" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) print_env ;;
        *) usage ;;
    esac
}

main "$@"
