#!/usr/bin/env bash
# deploy/prometheus.sh - Prometheus (server + promtool) from Debian's `prometheus` package, for checks and tests.
#
# Usage: deploy/prometheus.sh {install|check|run CONFIG PORT DATA_DIR}
#   install  install Debian's `prometheus` package if promtool or the server is missing (root + apt-get;
#            idempotent: nothing happens when both are there). Its init script is never started here:
#            tests run their own throwaway servers.
#   check    install, then `promtool check config` (syntax) on deploy/prometheus/prometheus.yml,
#            `promtool check rules` and `promtool test rules` on deploy/prometheus/rules*.yml.
#   run      exec a throwaway server in the foreground: CONFIG, listening on 127.0.0.1:PORT, TSDB in
#            DATA_DIR (retention 1 h), lifecycle API on (POST /-/reload). It becomes this process: stop it
#            with SIGTERM to the pid you started.
#
# Environment: CHURNWATCH_PROMETHEUS (server binary) and CHURNWATCH_PROMTOOL override the binaries' paths.
set -euo pipefail

readonly HERE="$(cd "$(dirname "$0")" && pwd)"
readonly RULES_DIR="$HERE/prometheus"
PROMETHEUS_BIN="${CHURNWATCH_PROMETHEUS:-$(command -v prometheus || echo /usr/bin/prometheus)}"
PROMTOOL_BIN="${CHURNWATCH_PROMTOOL:-$(command -v promtool || echo /usr/bin/promtool)}"

say() { printf 'prometheus: %s\n' "$*"; }
die() { printf 'prometheus: error: %s\n' "$*" >&2; exit 1; }

usage() {
    printf 'usage: %s {install|check|run CONFIG PORT DATA_DIR}\n' "$0" >&2
    exit 2
}

installed() { [[ -x "$PROMETHEUS_BIN" && -x "$PROMTOOL_BIN" ]]; }

cmd_install() {
    if installed; then
        return 0
    fi
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "promtool/prometheus missing; installing Debian package 'prometheus'"
        apt-get update -qq
        # No recommends: node-exporter is not needed. Debian's policy-rc.d in containers (exit 101) keeps
        # the packaged service from starting; where there is none, the service may start on :9090 as usual.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
        PROMETHEUS_BIN=/usr/bin/prometheus
        PROMTOOL_BIN=/usr/bin/promtool
    else
        die "promtool/prometheus not found ($PROMTOOL_BIN, $PROMETHEUS_BIN) and cannot install them here (need root and apt-get; Debian/Ubuntu: apt-get install prometheus)"
    fi
    installed || die "installing 'prometheus' did not provide $PROMTOOL_BIN and $PROMETHEUS_BIN"
    say "installed: $("$PROMETHEUS_BIN" --version 2>&1 | head -n 1)"
}

cmd_check() {
    cmd_install
    # --syntax-only: the config names rule files by their path inside the container (/etc/prometheus).
    "$PROMTOOL_BIN" check config --syntax-only "$RULES_DIR/prometheus.yml"
    "$PROMTOOL_BIN" check rules "$RULES_DIR/rules.yml"
    (cd "$RULES_DIR" && "$PROMTOOL_BIN" test rules rules_test.yml rules_test_days.yml)
}

cmd_run() {
    [[ $# -eq 3 ]] || usage
    local config="$1" port="$2" data="$3"
    [[ -r "$config" ]] || die "no config file at $config"
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, not '$port'"
    [[ -x "$PROMETHEUS_BIN" ]] || die "no prometheus server at $PROMETHEUS_BIN (run: bash deploy/prometheus.sh install)"
    mkdir -p "$data"
    exec "$PROMETHEUS_BIN" \
        --config.file="$config" \
        --web.listen-address="127.0.0.1:$port" \
        --storage.tsdb.path="$data" \
        --storage.tsdb.retention.time=1h \
        --web.enable-lifecycle \
        --log.level=warn
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        install) [[ $# -eq 0 ]] || usage; cmd_install ;;
        check) [[ $# -eq 0 ]] || usage; cmd_check ;;
        run) cmd_run "$@" ;;
        *) usage ;;
    esac
}

main "$@"
